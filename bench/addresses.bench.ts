/**
 * Deposit-address figures (issue 3): against raw bip32 + tiny-secp256k1 derivation (wallet.bench.ts), the pool's
 * sustained derivation with one and two worker threads, durable in-process issuance from a warm pool,
 * and restart-to-ready time and memory with 1,000,000 issued addresses.
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
import type { Bench, Measure } from './harness.js';
import { rawDerive } from './wallet.bench.js';

const DESCRIPTOR =
  'wpkh([73c5da0a/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/<0;1>/*)#lxek0ef2';
const descriptor = parseDescriptor(DESCRIPTOR, { network: 'regtest' });

function poolRate(workers: number): (quick: boolean) => Promise<number> {
  return async (quick) => {
    const n = quick ? 2_000 : 8_000;
    const pool = new AddressPool(descriptor, 'regtest', 0, 1_000_000, { size: 256, batch: 256, workers });
    try {
      await pool.warm(256); // workers started and JIT warm
      await pool.take(256);
      const start = performance.now();
      await pool.take(n);
      return n / ((performance.now() - start) / 1000);
    } finally {
      await pool.close();
    }
  };
}

// Durable issuance: one warm pool serves every run, so each run measures lookup + group-committed fsync only.
let issueDir = '';
let issueStore: Store | undefined;
let issueDeposits: DepositAddresses | undefined;
let issueRun = 0;
const issueCount = (quick: boolean): number => (quick ? 10_000 : 20_000);

const fsyncBatches: Measure = {
  name: 'level.batch100x3.fsync',
  async run(quick) {
    const dir = mkdtempSync(join(tmpdir(), 'custody-bench-level-'));
    const db = new Level<string, string>(dir);
    const batches = quick ? 50 : 200;
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
const restartFigures: { readyMs: number; rssMB: number }[] = [];
const childPath = fileURLToPath(new URL('./restart-child.js', import.meta.url));

async function restartOnce(): Promise<{ readyMs: number; rssMB: number }> {
  const out = execFileSync(process.execPath, [childPath, fixture, DESCRIPTOR], { encoding: 'utf8' });
  const r = JSON.parse(out.trim()) as { readyMs: number; rssMB: number };
  restartFigures.push(r);
  return r;
}

const nodeStart: Measure = {
  name: 'node.startup',
  async run() {
    const start = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    return (performance.now() - start) / 1000;
  },
};

export const addressBenches: Bench[] = [
  {
    name: 'addresses.pool.1worker',
    unit: 'addr/s',
    goals: [{ op: 'ratio>=', value: 0.9 }],
    baseline: rawDerive,
    run: poolRate(1),
  },
  {
    name: 'addresses.pool.2workers',
    unit: 'addr/s',
    goals: [{ op: 'ratio>=', value: 1.0 }],
    baseline: rawDerive,
    run: poolRate(2),
  },
  {
    name: 'deposit.newAddress.inprocess',
    unit: 'addr/s',
    goals: [{ op: '>=', value: 20_000 }],
    baseline: fsyncBatches,
    runs: 5,
    quickRuns: 3,
    async setup() {
      issueDir = join(mkdtempSync(join(tmpdir(), 'custody-bench-issue-')), 'data');
      issueStore = await Store.open(issueDir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
      const quick = process.argv.includes('--quick');
      const total = issueCount(quick) * (quick ? 3 : 5) + 1;
      issueDeposits = await DepositAddresses.open(issueStore, descriptor, { pool: { size: total, batch: 512, workers: 2 } });
      process.stderr.write(`bench: deriving ${total.toLocaleString('en-US')} addresses ahead ...\n`);
      await issueDeposits.warm(total);
    },
    async teardown() {
      await issueDeposits?.close();
      await issueStore?.close();
      rmSync(join(issueDir, '..'), { recursive: true, force: true });
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
    quickRuns: 2,
    async setup() {
      fixture = await millionFixture(1_000_000);
    },
    async run() {
      return (await restartOnce()).readyMs / 1000;
    },
  },
  {
    name: 'deposit.restart.1M.rss',
    unit: 'MB',
    goals: [{ op: '<=', value: 300 }],
    runs: 1,
    quickRuns: 1,
    // The same child runs as the ready-time entry; their median RSS.
    async run() {
      const rss = restartFigures.map((r) => r.rssMB).sort((a, b) => a - b);
      return rss[rss.length >> 1] ?? (await restartOnce()).rssMB;
    },
  },
];
