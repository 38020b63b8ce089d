/**
 * `npm run demo`: a scripted tour of custody on its own dev system (dev/devmode.ts), printing each step
 * and the command an operator or app would use: a deposit address issued and paid, seen and confirmed;
 * a withdrawal paid; a large one waiting for approval and approved; the hot cap sweeping to cold; a
 * refill PSBT signed with custody-signer and imported; the audit chain verified. Exits 0 only if every
 * step did what it says.
 */
import { readFileSync } from 'node:fs';
import { CustodyClient } from '../src/client/app-client.js';
import type { CustodyEvent } from '../src/service/events.js';
import type { SweepView } from '../src/service/sweeps.js';
import type { WithdrawalView } from '../src/service/withdrawals.js';
import { Deriver } from '../src/wallet/derive.js';
import { parseDescriptor } from '../src/wallet/descriptor.js';
import { runCli } from '../test/support/cli.js';
import { startDev, type DevSystem } from './devmode.js';

const say = (text: string): void => void process.stdout.write(`${text}\n`);
let stepNo = 0;
const step = (title: string): void => say(`\n== ${++stepNo}. ${title}`);
const show = (cmd: string): void => say(`   $ ${cmd}`);

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function client(d: DevSystem, name: string): CustodyClient {
  return new CustodyClient({ endpoint: d.appEndpoint, serverPublicKey: d.serverPublicKey, keyFile: d.clients[name]!.keyFile, timeoutMs: 20_000 });
}

async function events(c: CustodyClient, after: number): Promise<CustodyEvent[]> {
  return (await c.eventsSince(after, 1000)).events;
}

async function cli(d: DevSystem, args: readonly string[], fd3?: string): Promise<string> {
  show(`custody ${args.join(' ')}`);
  const r = await d.custody(args, fd3);
  if (r.code !== 0) throw new Error(`custody ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  for (const line of r.stdout.trimEnd().split('\n')) say(`     ${line}`);
  return r.stdout;
}

async function tour(d: DevSystem): Promise<void> {
  const app = client(d, 'app');
  const payer = client(d, 'payer');
  const watcher = client(d, 'watcher');
  try {
    const get = async (id: string): Promise<WithdrawalView> => (await payer.call('withdrawal.get', { id })) as WithdrawalView;
    const state = (id: string, s: string): Promise<WithdrawalView> => until(`${id} ${s}`, async () => {
      const w = await get(id);
      return w.state === s ? w : undefined;
    });

    step('An app asks for a deposit address (cold wallet, derived from its xpub; no private key on this host)');
    show(`app → deposit.newAddress {requestId: "demo-1", account: "alice"}`);
    const addr = await app.newAddress({ requestId: 'demo-1', account: 'alice' });
    say(`     ${addr.address}  (index ${addr.index}, path ${addr.path})`);

    step('The customer pays it; the daemon sees the deposit, then confirms it');
    const head = (await watcher.eventsSince(-1, 1)).head;
    await d.funder.pay([{ address: addr.address, sats: 25_000_000n }]);
    const seen = await until('deposit seen', async () => (await events(watcher, head)).find((e) => e.type === 'deposit.seen'));
    say(`     event deposit.seen: ${JSON.stringify(seen.data)}`);
    await d.mine(1);
    const confirmed = await until('deposit confirmed', async () => (await events(watcher, head)).find((e) => e.type === 'deposit.confirmed'));
    say(`     event deposit.confirmed: ${JSON.stringify(confirmed.data)}`);

    step('A withdrawal within policy is signed by the hot wallet, broadcast and confirmed');
    const dest = d.cold.address(0, 900); // any address outside the hot wallet
    show(`payer → withdrawal.create {requestId: "w-1", address: "${dest}", amountSats: 2000000}`);
    const w1 = (await payer.call('withdrawal.create', { requestId: 'w-1', address: dest, amountSats: 2_000_000 })) as WithdrawalView;
    const b1 = await state(w1.id, 'broadcast');
    say(`     ${w1.id} broadcast in ${b1.txid}`);
    await d.mine(1);
    await state(w1.id, 'confirmed');
    say(`     ${w1.id} confirmed`);

    step('A large withdrawal waits for an approver; an operator approves it');
    const w2 = (await payer.call('withdrawal.create', { requestId: 'w-2', address: dest, amountSats: 30_000_000 })) as WithdrawalView;
    say(`     ${w2.id} is ${w2.state} (above the 0.1 BTC approval threshold)`);
    await cli(d, ['withdrawals', 'approve', w2.id]);
    const b2 = await state(w2.id, 'broadcast');
    say(`     ${w2.id} broadcast in ${b2.txid}`);
    await d.mine(1);
    await state(w2.id, 'confirmed');

    step('The hot balance goes over its cap (3 BTC); the excess is swept to a cold address');
    const hot = new Deriver(parseDescriptor(`wpkh(${d.hotKeyOrigin}/<0;1>/*)`, { network: 'regtest' }), 'regtest');
    const before = (await watcher.eventsSince(-1, 1)).head;
    await d.funder.pay([{ address: hot.address(0, 5), sats: 250_000_000n }]);
    await d.mine(1);
    const sweep = await until('the hot-cap sweep', async () => (await events(watcher, before)).find((e) => e.type === 'payout.signed' && e.data['kind'] === 'sweep'));
    say(`     event payout.signed (kind sweep): ${sweep.data['txid'] as string}`);
    await d.mine(1);
    await until('the sweep confirmed', async () => (await events(watcher, before)).find((e) => e.type === 'payout.confirmed' && e.data['txid'] === sweep.data['txid']));
    const s = await watcher.status();
    say(`     hot ${s.balances!.hot.confirmedSats} sats, cold ${s.balances!.cold.confirmedSats} sats`);

    step('Cold to hot: a refill PSBT, signed on the (here simulated) air-gapped machine, imported');
    const created = await cli(d, ['sweep', 'create', '--refill', '0.2btc']);
    const file = /PSBT: (\S+)/.exec(created)?.[1] as string;
    show(`custody-signer sign ${file} --config ${d.signerPins}   (on the offline machine; it asks for the mnemonic)`);
    const signedFile = file.replace(/\.psbt$/, '.signed.psbt');
    const signed = await runCli('custody-signer', ['sign', file, '-o', signedFile, '--config', d.signerPins, '--mnemonic-fd', '3', '--yes'], { fd3: readFileSync(d.coldMnemonicFile, 'utf8') });
    if (signed.code !== 0) throw new Error(`custody-signer sign failed: ${signed.stderr}`);
    for (const line of signed.stdout.trimEnd().split('\n')) say(`     ${line}`);
    say(`     ${signed.stderr.trim().split('\n')[0] ?? ''}`);
    await cli(d, ['sweep', 'import', signedFile]);
    const id = /^(sw-[0-9a-f]{8})/m.exec(created)?.[1] as string;
    await d.mine(1);
    const done = await until('the refill confirmed', async () => {
      const r = await d.custody(['sweep', 'show', id]);
      const v = JSON.parse(r.stdout) as SweepView;
      return v.state === 'confirmed' ? v : undefined;
    });
    say(`     ${id} confirmed in ${done.txid}: ${done.amountSats} sats now in the hot wallet`);

    step('Every act above is on the hash-chained audit log');
    await cli(d, ['audit', 'tail', '-n', '5']);
    await cli(d, ['audit', 'verify']);
  } finally {
    await Promise.all([app.close(), payer.close(), watcher.close()]);
  }
}

async function main(): Promise<void> {
  say('Starting a dev system (regtest node, daemon, keys) for the tour…');
  const d = await startDev({ blockIntervalMs: 0, keep: false, log: () => undefined });
  try {
    await tour(d);
    say(`\nThe tour is done: ${stepNo} steps, each checked. (npm run dev gives you a system to try the same by hand.)`);
  } finally {
    await d.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
