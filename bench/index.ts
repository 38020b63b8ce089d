/**
 * `npm run bench [-- --quick] [-- --json FILE] [-- --only SUBSTRING]`: every benchmark figure the issues
 * ask for, in one table, each with its goal and its same-run baseline (DESIGN §9). Entries live in
 * bench/*.bench.ts, one file per area. `--quick` runs every entry with fewer and shorter runs (under a
 * minute on the 2-core machine, once the temp-dir caches exist); the full run takes several minutes.
 * Every entry's preparation runs first, all at once; then the entries are measured one at a time.
 */
import { writeFileSync } from 'node:fs';
import { collectGarbage, failedResult, formatTable, runBench, runCleanups, verdict, type Bench, type BenchResult } from './harness.js';
import { keystoreBenches } from './keystore.bench.js';
import { walletBenches } from './wallet.bench.js';
import { addressBenches } from './addresses.bench.js';
import { chainBenches } from './chain.bench.js';
import { rpcBenches } from './rpc.bench.js';
import { withdrawalBenches } from './withdrawals.bench.js';

/** In the table: the issues' order. */
const ALL: readonly Bench[] = [...keystoreBenches, ...walletBenches, ...addressBenches, ...rpcBenches, ...chainBenches, ...withdrawalBenches];
/**
 * Measured first: the withdrawal rig (a regtest node and a daemon following it, polling every 100 ms)
 * is stopped after its entries, so it never runs beside another entry's measurement.
 */
const FIRST: ReadonlySet<Bench> = new Set(withdrawalBenches);

/** An entry that takes longer than this is stopped and shown as ERROR (a hung daemon must not hang the table). */
const ENTRY_LIMIT_S = { quick: 45, full: 900 };
/**
 * The preparations' limit: the first run on a machine also builds the caches kept in the temp dir (a
 * data dir with 1,000,000 issued addresses, a 450-block regtest chain, a production-cost keystore).
 */
const PREPARE_LIMIT_S = 600;

function withLimit<T>(p: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

async function main(argv: readonly string[]): Promise<number> {
  const started = performance.now();
  const quick = argv.includes('--quick');
  const jsonAt = argv.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? argv[jsonAt + 1] : undefined;
  if (jsonAt >= 0 && jsonFile === undefined) {
    process.stderr.write('--json needs a file name\n');
    return 2;
  }
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
  const selected = ALL.filter((b) => only === undefined || b.name.includes(only));
  const order = [...selected.filter((b) => FIRST.has(b)), ...selected.filter((b) => !FIRST.has(b))];
  const results = new Map<Bench, BenchResult>();
  const limit = quick ? ENTRY_LIMIT_S.quick : ENTRY_LIMIT_S.full;
  try {
    // Every entry's unmeasured preparation at once (daemons, the regtest node, fixtures); then the
    // measurements one at a time, with nothing else of ours running but idle processes.
    process.stderr.write('bench: preparing ...\n');
    const t = performance.now();
    const prepared = new Map(
      await Promise.all(
        selected.map(async (b) => {
          const settled = (await Promise.allSettled([withLimit(b.prepare?.(quick) ?? Promise.resolve(), PREPARE_LIMIT_S, `${b.name} (prepare)`)]))[0];
          if (b.prepare !== undefined) process.stderr.write(`bench: ${b.name} prepared at ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
          return [b, settled] as const;
        }),
      ),
    );
    collectGarbage(); // the preparations' garbage, so the first measurements do not pay for it
    process.stderr.write(`bench: prepared in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    for (const b of order) {
      process.stderr.write(`bench: ${b.name} ...\n`);
      const t0 = performance.now();
      const p = prepared.get(b);
      try {
        if (p?.status === 'rejected') throw p.reason;
        results.set(b, await withLimit(runBench(b, quick), limit, b.name));
      } catch (err) {
        results.set(b, failedResult(b, quick, err));
        await b.teardown?.().catch(() => undefined);
      }
      process.stderr.write(`bench: ${b.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    await runCleanups();
  }
  const seconds = (performance.now() - started) / 1000;
  const table = selected.map((b) => results.get(b)).filter((r): r is BenchResult => r !== undefined);
  process.stdout.write(`${formatTable(table)}\n${verdict(table, quick, seconds)}\n`);
  if (jsonFile !== undefined) {
    // DESIGN §9's fields first, then whether the goal is met, the runs behind the median, and any error.
    const out = table.map((r) => ({
      name: r.name,
      value: r.value,
      unit: r.unit,
      goal: r.goal === '-' ? null : r.goal,
      ...(r.baseline === undefined ? {} : { baseline: r.baseline, ratio: r.ratio }),
      met: r.met,
      sample: r.sample,
      quick: r.quick,
      ...(r.error === undefined ? {} : { error: r.error }),
    }));
    writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
  }
  return table.some((r) => r.error !== undefined) ? 1 : 0;
}

// Exit explicitly: an entry stopped by its time limit may leave handles open.
process.exit(await main(process.argv.slice(2)));
