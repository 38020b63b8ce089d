/**
 * Deposit-address figures (issue 3): against raw bip32 + tiny-secp256k1 derivation (wallet.bench.ts), the pool's
 * sustained derivation with one and two worker threads; durable in-process issuance from a warm pool,
 * beside fsync'd LevelDB batches of the same keys; restart-to-ready time and memory with 1,000,000 issued
 * addresses, beside a bare `node` process's start-up time and memory. The 1,000,000-address data dir is
 * built once (it takes a while) and kept in the temp dir.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { Store } from '../src/store/db.js';
import { ADDR } from '../src/store/layout.js';
import { AddressPool } from '../src/service/address-pool.js';
import { DepositAddresses } from '../src/service/deposits.js';
import { parseDescriptor } from '../src/wallet/descriptor.js';
import { median, type Bench, type Measure } from './harness.js';
import { rawDerive } from './wallet.bench.js';

const DESCRIPTOR =
  'wpkh([73c5da0a/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/<0;1>/*)#lxek0ef2';
const descriptor = parseDescriptor(DESCRIPTOR, { network: 'regtest' });

/**
 * The pool's sustained derivation rate: one pool per entry (its workers started and warm in the first
 * run, outside the timing), each run drains it and times `take(n)`, which waits on every worker.
 */
function poolBench(name: string, workers: number, ratio: number): Bench {
  let pool: AddressPool | undefined;
  const count = (quick: boolean): number => (quick ? 800 : 8_000);
  return {
    name,
    unit: 'addr/s',
    goals: [{ op: 'ratio>=', value: ratio }],
    baseline: rawDerive,
    size: (quick) => `${count(quick).toLocaleString('en-US')} addr`,
    async setup() {
      pool = new AddressPool(descriptor, 'regtest', 0, 1_000_000, { size: 256, batch: 256, workers });
    },
    async teardown() {
      await pool?.close();
      pool = undefined;
    },
    async run(quick) {
      const p = pool as AddressPool;
      await p.warm(256);
      await p.take(256); // empty: the timed take waits on derivation alone
      const n = count(quick);
      const start = performance.now();
      await p.take(n);
      const rate = n / ((performance.now() - start) / 1000);
      await p.warm(256); // refilled now, so the baseline's next run has the cores to itself
      return rate;
    },
  };
}

// Durable issuance: one warm pool serves every run, so each run measures lookup + group-committed fsync only.
let issueDir = '';
let issueStore: Store | undefined;
let issueDeposits: DepositAddresses | undefined;
let issuePrepared: Promise<void> | undefined;
let issueRun = 0;
/** The pool's nominal size: it tops up only below half of it, and it is warmed with every run's addresses plus this, so it never does while measured. */
const ISSUE_POOL = 1_024;
const issueCount = (quick: boolean): number => (quick ? 2_000 : 20_000);
const fsyncBatchCount = (quick: boolean): number => (quick ? 25 : 200);

const fsyncBatches: Measure = {
  name: 'level.batch100x3.fsync',
  async run(quick) {
    const dir = mkdtempSync(join(tmpdir(), 'custody-bench-level-'));
    const db = new Level<string, string>(dir);
    const batches = fsyncBatchCount(quick);
    const start = performance.now();
    for (let b = 0; b < batches; b++) {
      const ops = [];
      for (let i = 0; i < 100; i++) {
        const k = `${b}-${i}`;
        ops.push({ type: 'put' as const, key: `a!i!${k}`, value: `{"index":${i},"address":"bcrt1q${k.padEnd(39, '0')}","account":"acct"}` });
        ops.push({ type: 'put' as const, key: `a!r!app!${k}`, value: String(i) }, { type: 'put' as const, key: `a!a!${k}`, value: String(i) });
      }
      await db.batch(ops, { sync: true });
    }
    const rate = (batches * 100) / ((performance.now() - start) / 1000);
    await db.close();
    rmSync(dir, { recursive: true, force: true });
    return rate;
  },
};

/** A data dir holding `count` issued-address records, built once and cached (records are written directly). */
async function millionFixture(count: number): Promise<string> {
  const dir = join(tmpdir(), `custody-bench-issued-${count}-v1`);
  if (existsSync(join(dir, 'READY'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const store = await Store.open(dir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
  process.stderr.write(`bench: building a data dir with ${count.toLocaleString('en-US')} issued addresses (once; cached in ${dir}) ...\n`);
  const issuedAt = new Date().toISOString();
  for (let from = 0; from < count; from += 2_000) {
    const ops = [];
    for (let i = from; i < Math.min(count, from + 2_000); i++) {
      // A real-length regtest address; the restart path never derives or validates these.
      const address = `bcrt1q${i.toString(16).padStart(38, '0')}`;
      const record = { index: i, address, path: `m/84h/1h/0h/0/${i}`, account: `customer-${i % 50_000}`, requestId: `req-${i}`, scope: 'app', issuedAt };
      ops.push(
        { type: 'put' as const, key: ADDR.record(i), value: JSON.stringify(record) },
        { type: 'put' as const, key: ADDR.requestId('app', `req-${i}`), value: String(i) },
        { type: 'put' as const, key: ADDR.address(address), value: String(i) },
      );
    }
    await store.commit(ops);
  }
  await store.commit([{ type: 'put', key: ADDR.next, value: String(count) }]);
  await store.close();
  execFileSync('touch', [join(dir, 'READY')]);
  return dir;
}

let fixture = '';
let fixturePrepared: Promise<void> | undefined;
function prepareFixture(): Promise<void> {
  fixturePrepared ??= millionFixture(1_000_000).then((dir) => void (fixture = dir));
  return fixturePrepared;
}
const restartFigures: { readyMs: number; rssMB: number }[] = [];
const childPath = fileURLToPath(new URL('./restart-child.js', import.meta.url));

async function restartOnce(): Promise<{ readyMs: number; rssMB: number }> {
  const out = execFileSync(process.execPath, [childPath, fixture, DESCRIPTOR], { encoding: 'utf8' });
  const r = JSON.parse(out.trim()) as { readyMs: number; rssMB: number };
  restartFigures.push(r);
  return r;
}

/** A bare `node` process: its start-up time and resident memory, the baselines of the restart figures. */
const emptyNode: { seconds: number; rssMB: number }[] = [];
function runEmptyNode(): { seconds: number; rssMB: number } {
  const start = performance.now();
  const out = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))'], { encoding: 'utf8' });
  const r = { seconds: (performance.now() - start) / 1000, rssMB: Number(out) / 2 ** 20 };
  emptyNode.push(r);
  return r;
}

const nodeStart: Measure = {
  name: 'node.startup',
  run: async () => runEmptyNode().seconds,
};

const nodeRss: Measure = {
  name: 'node.empty.rss',
  // The bare processes the ready-time entry started as its baseline (or one of its own).
  run: async () => (emptyNode.length > 0 ? median(emptyNode.map((r) => r.rssMB)) : runEmptyNode().rssMB),
};

export const addressBenches: Bench[] = [
  poolBench('addresses.pool.1worker', 1, 0.9),
  // "Beyond it with the second core": more than the raw single-thread rate.
  poolBench('addresses.pool.2workers', 2, 1.0),
  {
    name: 'deposit.newAddress.inprocess',
    unit: 'addr/s',
    goals: [{ op: '>=', value: 20_000 }],
    baseline: fsyncBatches,
    runs: 5,
    quickRuns: 3,
    size: (quick) => `${issueCount(quick).toLocaleString('en-US')} addr`,
    prepare(quick) {
      issuePrepared ??= (async () => {
        issueDir = join(mkdtempSync(join(tmpdir(), 'custody-bench-issue-')), 'data');
        issueStore = await Store.open(issueDir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
        const total = issueCount(quick) * (quick ? 3 : 5) + ISSUE_POOL;
        issueDeposits = await DepositAddresses.open(issueStore, descriptor, { pool: { size: ISSUE_POOL, batch: 512, workers: 2 } });
        await issueDeposits.warm(total);
      })();
      return issuePrepared;
    },
    async teardown() {
      const [deposits, store, dir] = [issueDeposits, issueStore, issueDir];
      [issueDeposits, issueStore, issueDir, issuePrepared] = [undefined, undefined, '', undefined];
      await deposits?.close();
      await store?.close();
      if (dir !== '') rmSync(join(dir, '..'), { recursive: true, force: true });
    },
    // 2,048 concurrent callers, each issuing in turn: every request is a lookup and a group-committed fsync.
    async run(quick) {
      const deposits = issueDeposits as DepositAddresses;
      const count = issueCount(quick);
      const run = issueRun++;
      let n = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: 2048 }, async () => {
          while (n < count) {
            const i = n++;
            await deposits.newAddress({ requestId: `b${run}-${i}`, account: `acct-${i % 1000}` }, 'bench');
          }
        }),
      );
      return count / ((performance.now() - start) / 1000);
    },
  },
  {
    name: 'deposit.restart.1M.readyTime',
    unit: 's',
    goals: [{ op: '<=', value: 3 }],
    baseline: nodeStart,
    runs: 3,
    quickRuns: 1,
    size: () => '1M issued',
    prepare: prepareFixture,
    async setup() {
      restartFigures.length = 0;
      emptyNode.length = 0;
    },
    async run() {
      return (await restartOnce()).readyMs / 1000;
    },
  },
  {
    name: 'deposit.restart.1M.rss',
    unit: 'MB',
    goals: [{ op: '<=', value: 300 }],
    baseline: nodeRss,
    runs: 1,
    quickRuns: 1,
    size: () => '1M issued',
    // The same child runs as the ready-time entry; their median RSS.
    prepare: prepareFixture,
    async run() {
      return restartFigures.length > 0 ? median(restartFigures.map((r) => r.rssMB)) : (await restartOnce()).rssMB;
    },
  },
];
