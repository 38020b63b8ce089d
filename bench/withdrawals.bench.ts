/**
 * Withdrawal figures (issue 6), through a real custodyd child process following a real regtest node
 * (bcoin, a child process), hot wallet unlocked and funded:
 * - withdrawal.signed.rpc64: withdrawal.create with 64 in flight from one client; the figure counts a
 *   withdrawal when its signed transaction is durable (the payout.signed event, written in the batch
 *   that persists the transaction before broadcast), so it is accepted-and-signed per second.
 * - withdrawal.toSigned.p50: one withdrawal at a time, from the call to its withdrawal.signed event on the
 *   live feed, with a batch window of 0 (the issue asks for the latency excluding the window).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodyClient } from '../src/client/app-client.js';
import type { CustodyEvent } from '../src/service/events.js';
import { Deriver } from '../src/wallet/derive.js';
import { appClient, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../test/support/daemon.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../test/support/regtest.js';
import { chainConfig, hotAddress, unlockDaemon, waitForTip } from '../test/support/chain.js';
import { regtestDescriptor } from '../test/support/wallets.js';
import { percentile, type Bench } from './harness.js';

interface Rig {
  node: RegtestNode;
  funder: Funder;
  f: DaemonFixture;
  d: RunningTestDaemon;
  client: CustodyClient;
}

let rig: Rig | undefined;
let counter = 0;
const destinations = Array.from({ length: 64 }, (_, i) => new Deriver(regtestDescriptor(), 'regtest').address(1, 9000 + i));

async function ensureRig(): Promise<Rig> {
  if (rig !== undefined) return rig;
  const node = await startRegtestNode();
  const funder = await Funder.create(node, 450);
  const dir = mkdtempSync(join(tmpdir(), 'custody-bench-wd-'));
  const f = await makeDaemonFixture({
    clients: { payer: ['withdrawals'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n[withdrawals]\nmaxAmountSats = 100_000_000\n[withdrawals.batch]\nwindowMs = 0\nmaxOutputs = 1000\n`,
  });
  const d = await startTestDaemon(f);
  const client = appClient(f, 'payer', 60_000);
  // 600 coins of 0.05 BTC on the hot wallet: each batch spends a confirmed coin (change waits for a block).
  for (let k = 0; k < 6; k++) await funder.pay(Array.from({ length: 100 }, (_, i) => ({ address: hotAddress(f, i), sats: 5_000_000n })));
  await mine(node, 1, funder.address);
  await waitForTip(client, node);
  await unlockDaemon(f);
  rig = { node, funder, f, d, client };
  await signedBurst(rig, 300); // warm-up (JIT), outside any measurement
  return rig;
}

async function stopRig(): Promise<void> {
  if (rig === undefined) return;
  const r = rig;
  rig = undefined;
  await r.client.close();
  await r.d.stop('SIGTERM');
  await r.node.stop();
  rmSync(r.f.dir, { recursive: true, force: true });
}

/** `n` creates with 64 in flight; resolves with withdrawals durably signed per second. */
async function signedBurst(r: Rig, n: number): Promise<number> {
  // Confirm the change of earlier batches so there are coins to spend (outside the measurement).
  await mine(r.node, 1, r.funder.address);
  await waitForTip(r.client, r.node);
  const head = (await r.client.eventsSince(-1, 1)).head;
  const start = performance.now();
  let next = 0;
  const batch = counter;
  counter += n;
  await Promise.all(
    Array.from({ length: 64 }, async (_, lane) => {
      while (next < n) {
        const i = next++;
        await r.client.call('withdrawal.create', { requestId: `bench-${batch + i}`, address: destinations[lane]!, amountSats: 1_000 + (i % 1000) });
      }
    }),
  );
  let signed = 0;
  for (let seq = head; signed < n; ) {
    const { events } = await r.client.eventsSince(seq, 1000);
    for (const e of events) if (e.type === 'payout.signed') signed += e.data['withdrawals'] as number;
    if (events.length > 0) seq = (events[events.length - 1] as CustodyEvent).seq;
    else await new Promise((res) => setTimeout(res, 2));
    if (performance.now() - start > 120_000) throw new Error(`only ${signed} of ${n} signed after 120 s`);
  }
  return n / ((performance.now() - start) / 1000);
}

async function latencyRun(quick: boolean): Promise<number> {
  const r = await ensureRig();
  await mine(r.node, 1, r.funder.address);
  await waitForTip(r.client, r.node);
  const n = quick ? 20 : 60;
  const waiting = new Map<string, () => void>();
  const sub = r.client.subscribe(r.f.eventsEndpoint, (await r.client.eventsSince(-1, 1)).head, (e) => {
    if (e.type === 'withdrawal.signed') waiting.get(e.data['requestId'] as string)?.();
  });
  await new Promise((res) => setTimeout(res, 300)); // the subscription is live
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const requestId = `lat-${counter++}`;
    const signed = new Promise<void>((res) => waiting.set(requestId, res));
    const t0 = performance.now();
    await r.client.call('withdrawal.create', { requestId, address: destinations[i % 64]!, amountSats: 5_000 });
    await signed;
    latencies.push(performance.now() - t0);
    if (i % 20 === 19) {
      await mine(r.node, 1, r.funder.address); // fresh confirmed coins, outside the timed calls
      await waitForTip(r.client, r.node);
    }
  }
  await sub.close();
  return percentile(latencies.sort((a, b) => a - b), 50);
}

export const withdrawalBenches: Bench[] = [
  {
    name: 'withdrawal.signed.rpc64',
    unit: 'wd/s',
    goals: [{ op: '>=', value: 500 }],
    runs: 3,
    quickRuns: 1,
    async run(quick) {
      return signedBurst(await ensureRig(), quick ? 500 : 2_000);
    },
  },
  {
    name: 'withdrawal.toSigned.p50',
    unit: 'ms',
    goals: [{ op: '<=', value: 20 }],
    runs: 3,
    quickRuns: 1,
    run: latencyRun,
    teardown: stopRig,
  },
];
