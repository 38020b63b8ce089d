/**
 * `custody unlock | lock | freeze | unfreeze | status`: operators' commands over the daemon's admin
 * socket. The socket comes from --admin, or the admin.endpoint of --config / $CUSTODY_CONFIG.
 * From another host: --admin tcp://HOST:PORT --server-key Z85 --key-file OPERATOR.key (the remote door).
 */
import { Command, Option } from 'commander';
import { CustodyError, isCustodyError } from '../errors.js';
import { configPath, loadConfig } from '../config/load.js';
import { AdminClient } from '../client/admin-client.js';
import type { StatusDocument } from '../service/status.js';
import { wipe } from '../crypto/wipe.js';
import { configure, parseIntOption, usage, type CliIo } from './run.js';
import { secretSource } from './secrets.js';

interface AdminOpts {
  admin?: string;
  config?: string;
  serverKey?: string;
  keyFile?: string;
}

function adminEndpoint(o: AdminOpts): string {
  if (o.admin !== undefined) return o.admin;
  const config = loadConfig(configPath(o.config));
  if (config.admin === undefined) throw usage('no admin socket: pass --admin ipc:///path or set [admin] endpoint in the configuration');
  return config.admin.endpoint;
}

export async function withAdmin<T>(o: AdminOpts, fn: (c: AdminClient) => Promise<T>): Promise<T> {
  const endpoint = adminEndpoint(o);
  const remote = endpoint.startsWith('tcp://');
  if (remote && (o.serverKey === undefined || o.keyFile === undefined)) throw usage(`--admin ${endpoint}: a tcp endpoint needs --server-key and --key-file (an operator key from \`custody keys operator\`)`);
  if (!remote && (o.serverKey !== undefined || o.keyFile !== undefined)) throw usage('--server-key and --key-file: only for a tcp:// --admin endpoint');
  const client = remote ? new AdminClient(endpoint, { remote: { serverPublicKey: o.serverKey as string, keyFile: o.keyFile as string } }) : new AdminClient(endpoint);
  try {
    return await fn(client);
  } catch (err) {
    if (isCustodyError(err, 'TIMEOUT')) {
      // A refused CURVE key never gets an answer (ZAP), so a timeout is all the client sees.
      const hint = remote ? 'is custodyd running with [admin] tcpEndpoint, is --server-key right, and is this key in [[operators]]?' : 'is custodyd running, and are you its user?';
      throw new CustodyError('UNAVAILABLE', `no answer on the admin socket: ${hint} (${err.message})`);
    }
    throw err;
  } finally {
    await client.close();
  }
}

export function adminOptions(cmd: Command): Command {
  return cmd
    .option('--admin <endpoint>', 'the daemon\'s admin socket, ipc:///path, or tcp://HOST:PORT from another host (default: admin.endpoint of the configuration)')
    .option('--server-key <z85>', 'with a tcp:// --admin: the daemon\'s admin CURVE public key')
    .option('--key-file <file>', 'with a tcp:// --admin: your operator key pair file (custody keys operator NAME)')
    .option('--config <file>', 'configuration file to read admin.endpoint from (default: $CUSTODY_CONFIG)');
}



function sinkLine(s: StatusDocument): string {
  const k = s.audit.sink;
  if (k === null) return '; not shipped off-host ([audit] syslog is not set)';
  const state = k.downSince === null ? 'reachable' : `UNREACHABLE since ${k.downSince} (${k.lastError ?? 'no error text'})`;
  return `; shipped to ${k.target} through seq ${k.shippedSeq}, ${k.waiting} waiting, ${state}${k.signingBlocked === null ? '' : `; SIGNING STOPPED: ${k.signingBlocked}`}`;
}

export function formatStatus(s: StatusDocument): string {
  const w = s.wallet;
  const progress =
    w.state === 'unlocked'
      ? `UNLOCKED since ${w.unlockedAt ?? '?'}`
      : w.unlock.received === 0
        ? `LOCKED (needs ${w.unlock.threshold} custodians)`
        : `LOCKED, unlock progress ${w.unlock.received}/${w.unlock.threshold} (${w.unlock.custodians.join(', ')}; nonce ${w.unlock.nonce ?? '-'}; expires ${w.unlock.expiresAt ?? '-'})`;
  const lines = [
    `custodyd ${s.version} on ${s.network}, up ${s.uptimeSeconds} s`,
    `wallet:   ${progress}`,
    `frozen:   ${s.frozen === null ? 'no' : `YES since ${s.frozen.at} by ${s.frozen.by}: ${s.frozen.reason}`}`,
    `deposits: ${s.deposits.highestIssued + 1} addresses issued, highest used index ${s.deposits.highestUsed}, recovery gap ${s.deposits.recoveryGap}`,
    `chain:    ${formatChain(s)}`,
    ...(s.balances === null
      ? []
      : [
          `hot:      ${formatSats(s.balances.hot.confirmedSats)} confirmed, ${formatSats(s.balances.hot.unconfirmedSats)} unconfirmed, ${formatSats(s.balances.hot.reservedSats)} reserved (${s.balances.hot.coins} coins)`,
          `cold:     ${formatSats(s.balances.cold.confirmedSats)} confirmed, ${formatSats(s.balances.cold.unconfirmedSats)} unconfirmed (${s.balances.cold.coins} coins)`,
        ]),
    `events:   head ${s.events.head}`,
    `audit:    head ${s.audit.head.seq} ${s.audit.head.hash.slice(0, 16)}…${sinkLine(s)}`,
  ];
  if (s.deposits.gapWarning !== null) lines.push(`WARNING:  ${s.deposits.gapWarning}`);
  return lines.join('\n');
}

function formatChain(s: StatusDocument): string {
  const c = s.chain;
  if (c.state === 'disabled') return 'not followed (no [chain] in the configuration)';
  const at = c.height === null ? 'no block applied yet' : `height ${c.height}${c.nodeHeight !== null && c.nodeHeight !== c.height ? ` of ${c.nodeHeight}` : ''}`;
  const state = c.state === 'connected' ? 'connected' : c.state.toUpperCase();
  return `${state}, ${at}, deposits confirmed at ${c.confirmations}${c.lastError === null ? '' : `; last error: ${c.lastError}`}`;
}

/** Satoshis with the BTC figure beside them, from the integer (no float arithmetic on amounts). */
export function formatSats(sats: number): string {
  const s = BigInt(sats);
  const whole = s / 100_000_000n;
  const frac = (s % 100_000_000n).toString().padStart(8, '0');
  return `${sats} sats (${whole}.${frac} BTC)`;
}

export function registerOperatorCommands(program: Command, io: CliIo): void {
  adminOptions(configure(program.command('unlock'), io))
    .description('Submit one custodian\'s passphrase towards unlocking the hot wallet; each custodian runs this in turn')
    .option('--custodian <name>', 'the custodian typing (asked when omitted)')
    .addOption(new Option('--passphrase-fd <n>', 'read the passphrase from this file descriptor (automation, tests)').argParser((v) => parseIntOption(v, '--passphrase-fd', 0, 1_000_000)))
    .action(async (o: AdminOpts & { custodian?: string; passphraseFd?: number }) => {
      if (o.custodian === undefined && !process.stdin.isTTY) throw usage('--custodian: required when there is no terminal to ask');
      const src = secretSource(o.passphraseFd, '--passphrase-fd');
      let passphrase: Buffer | undefined;
      try {
        // Name and passphrase are read by the same terminal session, so keys typed early are never
        // echoed or handed to the wrong prompt.
        const custodian = o.custodian ?? (await src.readVisible('Custodian name')).trim();
        passphrase = await src.read(`Passphrase for ${custodian}`);
        src.close();
        const frame = Buffer.from(passphrase);
        const r = (await withAdmin(o, (c) => c.call('unlock.submit', { custodian }, [frame]))) as {
          state: string;
          alreadyCounted: boolean;
          progress: { received: number; threshold: number; nonce: string | null };
        };
        if (r.state === 'unlocked') io.out(`Wallet UNLOCKED: the threshold of ${r.progress.threshold} custodians was reached`);
        else io.out(`Unlock progress ${r.progress.received}/${r.progress.threshold} (nonce ${r.progress.nonce ?? '-'})${r.alreadyCounted ? `; ${custodian} was already counted` : ''}`);
      } finally {
        src.close();
        wipe(passphrase);
      }
    });

  adminOptions(configure(program.command('lock'), io))
    .description('Lock the hot wallet now: wipes the key from the daemon\'s memory')
    .action(async (o: AdminOpts) => {
      await withAdmin(o, (c) => c.call('lock'));
      io.out('Wallet LOCKED');
    });

  adminOptions(configure(program.command('unlock-reset'), io))
    .description('Forget partial unlock progress (custodians start again)')
    .action(async (o: AdminOpts) => {
      await withAdmin(o, (c) => c.call('unlock.reset'));
      io.out('Unlock progress reset');
    });

  adminOptions(configure(program.command('freeze'), io))
    .description('Freeze the daemon: no signing until an operator unfreezes (deposits keep being tracked)')
    .requiredOption('--reason <text>', 'why (recorded in the audit log and sent to subscribers)')
    .action(async (o: AdminOpts & { reason: string }) => {
      const r = (await withAdmin(o, (c) => c.call('freeze', { reason: o.reason }))) as { at: string };
      io.out(`FROZEN at ${r.at}: ${o.reason}`);
    });

  adminOptions(configure(program.command('unfreeze'), io))
    .description('Lift a freeze')
    .action(async (o: AdminOpts) => {
      await withAdmin(o, (c) => c.call('unfreeze'));
      io.out('Unfrozen');
    });

  adminOptions(configure(program.command('status'), io))
    .description('Show the daemon\'s state: locked or unlocked, unlock progress, frozen, deposits, audit head')
    .option('--json', 'machine-readable output')
    .action(async (o: AdminOpts & { json?: boolean }) => {
      const s = (await withAdmin(o, (c) => c.call('status'))) as StatusDocument;
      io.out(o.json === true ? JSON.stringify(s, null, 2) : formatStatus(s));
    });
}


