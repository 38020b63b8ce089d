/**
 * Withdrawal figures (issue 6), through a real custodyd child process following a real regtest node
 * (bcoin, a child process), hot wallet unlocked and funded:
 * - withdrawal.signed.rpc64: withdrawal.create with 64 in flight from one client; the figure counts a
 *   withdrawal when its signed transaction is durable (the payout.signed event, written in the batch
 *   that persists the transaction before broadcast), so it is accepted-and-signed per second.
 * - withdrawal.toSigned.p50: one withdrawal at a time, from the call to its withdrawal.signed event on the
 *   live feed, with a batch window of 0 (the issue asks for the latency excluding the window).
 * Baselines (the issue names none): the CURVE transport of rpc.bench.ts measured in the same run, 64 in
 * flight for the rate and one round trip at a time for the latency.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { address, Block, networks, payments } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import type { CustodyClient } from '../src/client/app-client.js';
import { readKeystore } from '../src/keystore/keyfile.js';
import type { CustodyEvent } from '../src/service/events.js';
import { Deriver } from '../src/wallet/derive.js';
import { parseDescriptor } from '../src/wallet/descriptor.js';
import { adminClient, appClient, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../test/support/daemon.js';
import { passphraseFor } from '../test/support/keystore.js';
import { broadcast, mine, signP2wpkhSpend, startRegtestNode, type RegtestNode } from '../test/support/regtest.js';
import { chainConfig, waitForTip } from '../test/support/chain.js';
import { regtestDescriptor } from '../test/support/wallets.js';
import { atEnd, percentile, type Bench } from './harness.js';
import { ensureEcho, zmqRoundtrip1P50, zmqRoundtrip64 } from './rpc.bench.js';

interface Rig {
  node: RegtestNode;
  /** Where the blocks the rig mines pay (the chain cache's key). */
  miner: string;
  f: DaemonFixture;
  d: RunningTestDaemon;
  client: CustodyClient;
}

/** Whatever of the rig exists so far, so a failed start still stops what it started. */
const parts: { node?: RegtestNode; dirs: string[]; f?: DaemonFixture; d?: RunningTestDaemon; client?: CustodyClient } = { dirs: [] };
let rig: Promise<Rig> | undefined;
let counter = 0;
const destinations = Array.from({ length: 64 }, (_, i) => new Deriver(regtestDescriptor(), 'regtest').address(1, 9000 + i));
/** Blocks mined to the cache's key: segwit spends need height 432; coinbases 100 deep are spendable. */
const CHAIN_BLOCKS = 450;
/**
 * Hot coins of 0.01 BTC, paid in one transaction. Each batch spends at least one confirmed coin and its
 * change waits for the next block (mined before each burst), so a burst needs up to one coin per
 * withdrawal when batches are small: 2,400 covers the full run's 2,000.
 */
const HOT_COINS = 2_400;
const HOT_COIN_SATS = 1_000_000n;
const WARM_UP = (quick: boolean): number => (quick ? 100 : 300);
const BURST = (quick: boolean): number => (quick ? 500 : 2_000);
const LATENCY_COUNT = (quick: boolean): number => (quick ? 20 : 60);

/**
 * A regtest chain of 450 blocks paying one P2WPKH key, mined once and kept in the temp dir (bcoin's data
 * dir, the key and its mature coinbase coins); each rig starts its node on a fresh copy of it.
 */
const CHAIN_CACHE = join(tmpdir(), 'custody-bench-regtest-chain-v1');
interface ChainCache {
  privateKey: string;
  address: string;
  coins: Array<{ txid: string; vout: number; value: string }>;
}

async function chainCache(): Promise<ChainCache> {
  const meta = join(CHAIN_CACHE, 'funder.json');
  if (existsSync(join(CHAIN_CACHE, 'READY'))) return JSON.parse(readFileSync(meta, 'utf8')) as ChainCache;
  rmSync(CHAIN_CACHE, { recursive: true, force: true });
  mkdirSync(CHAIN_CACHE, { recursive: true });
  let key: Uint8Array;
  do key = randomBytes(32);
  while (!ecc.isPrivate(key));
  const pay = payments.p2wpkh({ pubkey: ecc.pointFromScalar(key, true) as Uint8Array, network: networks.regtest });
  const node = await startRegtestNode({ dataDir: join(CHAIN_CACHE, 'node') });
  const coins: ChainCache['coins'] = [];
  try {
    const hashes = await mine(node, CHAIN_BLOCKS, pay.address as string);
    for (const hash of hashes.slice(0, CHAIN_BLOCKS - 100)) {
      const cb = Block.fromBuffer(await node.client.getBlockRaw(hash)).transactions![0]!;
      cb.outs.forEach((o, vout) => {
        if (Buffer.from(o.script).equals(Buffer.from(pay.output as Uint8Array))) coins.push({ txid: cb.getId(), vout, value: o.value.toString() });
      });
    }
  } finally {
    await node.stop();
  }
  const cache: ChainCache = { privateKey: Buffer.from(key).toString('hex'), address: pay.address as string, coins };
  writeFileSync(meta, JSON.stringify(cache));
  writeFileSync(join(CHAIN_CACHE, 'READY'), '');
  return cache;
}

function ensureRig(quick: boolean): Promise<Rig> {
  rig ??= startRig(quick);
  return rig;
}

/**
 * A regtest node on a copy of the cached chain; a daemon (its birthday the block after the cache's) started
 * and unlocked through the admin socket; the hot wallet funded in one transaction and confirmed; a
 * warm-up burst. None of it is measured.
 */
async function startRig(quick: boolean): Promise<Rig> {
  const cache = await chainCache();
  const chainDir = mkdtempSync(join(tmpdir(), 'custody-bench-wd-chain-'));
  parts.dirs.push(chainDir);
  cpSync(join(CHAIN_CACHE, 'node'), chainDir, { recursive: true });
  const node = (parts.node = await startRegtestNode({ dataDir: chainDir }));
  const height = await node.client.getBlockCount();
  if (height !== CHAIN_BLOCKS) throw new Error(`the cached regtest chain is at ${height}, not ${CHAIN_BLOCKS}: delete ${CHAIN_CACHE}`);
  const dir = mkdtempSync(join(tmpdir(), 'custody-bench-wd-'));
  parts.dirs.push(dir);
  // Batches of at most 100 outputs, the daemon's default. (With 1,000, a full-run burst grew batches past
  // ~800 withdrawals, whose audit record overflows the 16 KB limit; the daemon then retried the same batch
  // for ever: no figure.)
  const f = (parts.f = await makeDaemonFixture({
    clients: { payer: ['withdrawals'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, height + 1)}\n[withdrawals]\nmaxAmountSats = 100_000_000\n[withdrawals.batch]\nwindowMs = 0\nmaxOutputs = 100\n`,
  }));
  const d = (parts.d = await startTestDaemon(f));
  const client = (parts.client = appClient(f, 'payer', 60_000));
  const admin = adminClient(f, 'bench');
  try {
    for (const custodian of ['ops1', 'ops2']) await admin.call('unlock.submit', { custodian }, [passphraseFor(custodian)]);
  } finally {
    await admin.close();
  }
  const { body } = readKeystore(join(f.dir, 'keystore.json'));
  const hot = new Deriver(parseDescriptor(`wpkh([${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}/<0;1>/*)`, { network: 'regtest' }), 'regtest');
  // One 50 BTC coinbase pays them all, change back to the key; ~75 kvB, so a fee of 200,000 sats keeps it
  // above the minimum relay fee rate.
  const fee = 200_000n;
  const need = HOT_COIN_SATS * BigInt(HOT_COINS) + fee;
  const coin = cache.coins.find((c) => BigInt(c.value) > need);
  if (coin === undefined) throw new Error(`no coin of ${need} sats in ${CHAIN_CACHE}/funder.json`);
  const outs = Array.from({ length: HOT_COINS }, (_, i) => ({ script: address.toOutputScript(hot.address(0, i), networks.regtest), sats: HOT_COIN_SATS }));
  outs.push({ script: address.toOutputScript(cache.address, networks.regtest), sats: BigInt(coin.value) - need });
  await broadcast(node, signP2wpkhSpend([{ txid: coin.txid, vout: coin.vout, value: BigInt(coin.value), privateKey: Buffer.from(cache.privateKey, 'hex') }], outs));
  await mine(node, 1, cache.address);
  await waitForTip(client, node);
  const r = { node, miner: cache.address, f, d, client };
  await signedBurst(r, WARM_UP(quick)); // warm-up (JIT), outside any measurement
  return r;
}

async function stopRig(): Promise<void> {
  rig = undefined;
  const { node, dirs, f, d, client } = parts;
  parts.node = parts.f = parts.d = parts.client = undefined;
  parts.dirs = [];
  await client?.close();
  await d?.stop('SIGTERM');
  await node?.stop();
  if (f !== undefined) rmSync(f.dir, { recursive: true, force: true });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
atEnd(stopRig);

/** The daemon's last log lines, on stderr: why a burst failed. */
function printDaemonLog(r: Rig): void {
  process.stderr.write(`bench: the withdrawal daemon's last log lines:\n${r.d.stderr().split('\n').slice(-20).join('\n')}\n`);
}

/** `n` creates with 64 in flight; resolves with withdrawals durably signed per second. */
async function signedBurst(r: Rig, n: number): Promise<number> {
  // Confirm the change of earlier batches so there are coins to spend (outside the measurement).
  await mine(r.node, 1, r.miner);
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
  ).catch((err: unknown) => {
    printDaemonLog(r);
    throw err;
  });
  let signed = 0;
  let txs = 0;
  for (let seq = head; signed < n; ) {
    const { events } = await r.client.eventsSince(seq, 1000);
    for (const e of events) {
      if (e.type !== 'payout.signed') continue;
      signed += e.data['withdrawals'] as number;
      txs++;
    }
    if (events.length > 0) seq = (events[events.length - 1] as CustodyEvent).seq;
    else await new Promise((res) => setTimeout(res, 2));
    if (performance.now() - start > 120_000) {
      printDaemonLog(r);
      throw new Error(`only ${signed} of ${n} signed after 120 s (in ${txs} transactions)`);
    }
  }
  const rate = n / ((performance.now() - start) / 1000);
  process.stderr.write(`bench: ${n} withdrawals signed in ${txs} transactions\n`);
  return rate;
}

async function latencyRun(quick: boolean): Promise<number> {
  const r = await ensureRig(quick);
  await mine(r.node, 1, r.miner);
  await waitForTip(r.client, r.node);
  const n = LATENCY_COUNT(quick);
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
    const created = (await r.client.call('withdrawal.create', { requestId, address: destinations[i % 64]!, amountSats: 5_000 })) as { id: string };
    await Promise.race([signed, new Promise((_, reject) => setTimeout(() => reject(new Error(`${requestId} not signed after 60 s`)), 60_000).unref())]).catch(async (err: unknown) => {
      printDaemonLog(r);
      // Which side lost it: the daemon (not signed) or the event feed (signed, event not delivered)?
      const w = (await r.client.call('withdrawal.get', { id: created.id }).catch((e: unknown) => ({ state: `unknown (${String(e)})` }))) as { state: string };
      throw new Error(`${(err as Error).message}; the daemon says ${created.id} is ${w.state}`);
    });
    latencies.push(performance.now() - t0);
    if (i % 20 === 19) {
      await mine(r.node, 1, r.miner); // fresh confirmed coins, outside the timed calls
      await waitForTip(r.client, r.node);
    }
  }
  await sub.close();
  return percentile(latencies.sort((a, b) => a - b), 50);
}

/** The rig and the echo child of the baselines, both up before the first measurement. */
async function prepare(quick: boolean): Promise<void> {
  await Promise.all([ensureRig(quick), ensureEcho()]);
}

export const withdrawalBenches: Bench[] = [
  {
    name: 'withdrawal.signed.rpc64',
    unit: 'wd/s',
    goals: [{ op: '>=', value: 500 }],
    // The transport ceiling for any RPC, measured in the same run (DESIGN §9).
    baseline: zmqRoundtrip64,
    runs: 3,
    quickRuns: 1,
    size: (quick) => `${BURST(quick).toLocaleString('en-US')} wd`,
    prepare,
    async run(quick) {
      return signedBurst(await ensureRig(quick), BURST(quick));
    },
  },
  {
    name: 'withdrawal.toSigned.p50',
    unit: 'ms',
    goals: [{ op: '<=', value: 20 }],
    // The floor of any single request: one CURVE round trip at a time, p50.
    baseline: zmqRoundtrip1P50,
    runs: 3,
    quickRuns: 1,
    size: (quick) => `${LATENCY_COUNT(quick)} wd one at a time`,
    prepare,
    run: latencyRun,
    // The rig polls its node every 100 ms: stopped as soon as its figures are taken (index.ts measures them first).
    teardown: stopRig,
  },
];
