/**
 * `custody sweep create | import | list | show | cancel`: cold PSBT sweeps, operators on the admin socket.
 * The daemon writes proposals to its outbox; the files go to the offline signers and come back to import.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { CustodyError } from '../errors.js';
import type { SweepView } from '../service/sweeps.js';
import { configure, parseIntOption, usage, type CliIo } from './run.js';
import { adminOptions, formatSats, withAdmin } from './operator.js';

interface Opts {
  admin?: string;
  config?: string;
}

/** `150000000`, `150000000sats`, `1.5btc` or `1.5 BTC` → satoshis, without ever passing through a float. */
export function parseAmount(text: string, option: string): bigint {
  const t = text.trim().toLowerCase().replace(/_/g, '');
  const sats = /^(\d{1,16})\s*(sats?)?$/.exec(t);
  if (sats !== null) return BigInt(sats[1] as string);
  const btc = /^(\d{1,8})(?:\.(\d{1,8}))?\s*btc$/.exec(t);
  if (btc !== null) return BigInt(btc[1] as string) * 100_000_000n + BigInt((btc[2] ?? '').padEnd(8, '0'));
  throw usage(`${option}: expected satoshis (150000000) or BTC with the unit (1.5btc), got "${text}"`);
}

function line(s: SweepView): string {
  const out = s.outputs.map((o) => `${o.role} ${o.address} ${o.valueSats}`).join(', ');
  return `${s.id}  ${s.kind.padEnd(11)} ${s.state.padEnd(9)} ${formatSats(s.amountSats)}, fee ${s.feeSats} sats, ${s.inputs.length} input${s.inputs.length === 1 ? '' : 's'} → ${out}${s.txid === null ? '' : `  tx ${s.txid}`}`;
}

export function registerSweepCommands(program: Command, io: CliIo): void {
  const cmd = configure(program.command('sweep'), io).description('Cold sweeps through PSBT files: propose, import the signed files, list, show, cancel');

  adminOptions(configure(cmd.command('create'), io))
    .description('Propose a cold sweep: a PSBT file in the daemon\'s outbox for the offline signers (custody-signer sign)')
    .option('--refill <amount>', 'move this much from cold to the hot wallet (sats, or e.g. 1.5btc)')
    .option('--consolidate', 'merge small cold coins into one cold change output', false)
    .option('--max-inputs <n>', 'with --consolidate: at most this many coins')
    .option('--fee-rate <r>', 'sat/vB (default: the node\'s estimate within the [withdrawals.fee] bounds)')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts & { refill?: string; consolidate: boolean; maxInputs?: string; feeRate?: string; json?: boolean }) => {
      if ((o.refill === undefined) === !o.consolidate) throw usage('give exactly one of --refill AMOUNT or --consolidate');
      if (o.maxInputs !== undefined && !o.consolidate) throw usage('--max-inputs goes with --consolidate');
      let feeRate: number | undefined;
      if (o.feeRate !== undefined) {
        feeRate = Number(o.feeRate);
        if (!Number.isFinite(feeRate) || feeRate <= 0 || feeRate > 10_000) throw usage(`--fee-rate: expected a positive number of sat/vB up to 10000, got "${o.feeRate}"`);
      }
      const amount = o.refill === undefined ? undefined : parseAmount(o.refill, '--refill');
      if (amount !== undefined && amount > 2_100_000_000_000_000n) throw usage(`--refill: ${amount} sats is more than 21 million BTC`);
      const params = amount !== undefined
        ? { refillSats: Number(amount), ...(feeRate === undefined ? {} : { feeRate }) }
        : { consolidate: true, ...(o.maxInputs === undefined ? {} : { maxInputs: parseIntOption(o.maxInputs, '--max-inputs', 2, 1_000) }), ...(feeRate === undefined ? {} : { feeRate }) };
      const s = (await withAdmin(o, (c) => c.call('sweep.create', params))) as SweepView;
      if (o.json === true) {
        io.out(JSON.stringify(s, null, 2));
        return;
      }
      io.out(line(s));
      io.out(`PSBT: ${s.files.psbt}`);
      io.out(`      ${s.files.base64} (the same, as base64 text)`);
      io.out(`unsigned txid ${s.unsignedTxid}: carry the file to each offline signer (custody-signer sign), then: custody sweep import FILE…`);
    });

  adminOptions(configure(cmd.command('import'), io))
    .description('Import signed PSBTs of one sweep (each cosigner\'s file, any order): checked, combined, finalized, broadcast and followed')
    .argument('<files...>', 'signed PSBT files (binary or base64)')
    .action(async (files: string[], o: Opts) => {
      const payload = files.map((f) => {
        let content: Buffer;
        try {
          content = readFileSync(f);
        } catch (err) {
          throw new CustodyError('PSBT_INVALID', `${f}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        }
        return { name: basename(f), base64: content.toString('base64') };
      });
      const s = (await withAdmin(o, (c) => c.call('sweep.import', { files: payload }))) as SweepView;
      io.out(line(s));
      io.out(`transaction ${s.txid} written and sent; follow it with: custody sweep show ${s.id}`);
    });

  adminOptions(configure(cmd.command('list'), io))
    .description('List sweeps, oldest first')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts & { json?: boolean }) => {
      const r = (await withAdmin(o, (c) => c.call('sweep.list', {}))) as { sweeps: SweepView[] };
      io.out(o.json === true ? JSON.stringify(r.sweeps, null, 2) : r.sweeps.map(line).join('\n') || '(none)');
    });

  for (const [name, method, what] of [
    ['show', 'sweep.get', 'Show one sweep'],
    ['cancel', 'sweep.cancel', 'Cancel a proposal not yet imported (its coins are free again; its signed files become useless)'],
  ] as const) {
    adminOptions(configure(cmd.command(`${name} <id>`), io))
      .description(what)
      .action(async (id: string, o: Opts) => {
        const s = (await withAdmin(o, (c) => c.call(method, { id }))) as SweepView;
        io.out(name === 'show' ? JSON.stringify(s, null, 2) : line(s));
      });
  }
}
