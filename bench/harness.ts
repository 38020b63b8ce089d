/**
 * The benchmark harness behind `npm run bench` (DESIGN §9): each entry is measured several times and
 * reported as the median, next to a raw-library or transport baseline measured in the same run (the two
 * interleaved), so the figures hold on a noisy machine. `--quick` uses fewer and shorter runs (the
 * table's "runs" column says how many and how big); `--json FILE` writes the table.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type Goal =
  | { readonly op: '>=' | '<='; readonly value: number } // absolute, in the entry's unit
  | { readonly op: 'ratio>='; readonly value: number }; // value / baseline

export interface Measure {
  readonly name: string;
  /** One measurement in `unit`; `quick` asks for a shorter run. */
  run(quick: boolean): Promise<number>;
}

export interface Bench extends Measure {
  readonly unit: string;
  /** The issue's goals; empty for a figure printed without one (a baseline, a p50 beside its p99). */
  readonly goals: readonly Goal[];
  readonly baseline?: Measure;
  /** Runs per figure (default 5; 3 with --quick). Slow entries lower it. */
  readonly runs?: number;
  readonly quickRuns?: number;
  /** What one run measures, e.g. "2,000 req": shown beside the run count, so a quick figure says it is one. */
  readonly size?: (quick: boolean) => string;
  /**
   * Unmeasured work started for every selected entry at once, before the first measurement (daemons,
   * nodes, fixtures, warm pools): their waits overlap instead of adding up. Must be idempotent.
   */
  readonly prepare?: (quick: boolean) => Promise<void>;
  /** Unmeasured work just before this entry's runs. */
  readonly setup?: (quick: boolean) => Promise<void>;
  readonly teardown?: () => Promise<void>;
}

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  goal: string;
  /** null: the entry has no goal. */
  met: boolean | null;
  baseline?: { name: string; value: number };
  ratio?: number;
  runs: number[];
  /** "3 x 2,000 req": the runs behind the median. */
  sample: string;
  quick: boolean;
  error?: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of nothing');
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

/** A full garbage collection of this process (V8's gc(), exposed at run time), e.g. between preparation and measurement. */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Stops whatever the entries left running (daemons, nodes, child processes); run once, at the end. */
const cleanups: Array<() => Promise<void>> = [];
export function atEnd(fn: () => Promise<void>): void {
  cleanups.push(fn);
}
export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

function goalText(goals: readonly Goal[], baseline?: Measure): string {
  if (goals.length === 0) return '-';
  return goals
    .map((g) => (g.op === 'ratio>=' ? `>= ${g.value}x ${baseline?.name ?? 'baseline'}` : `${g.op} ${g.value.toLocaleString('en-US')}`))
    .join(', ');
}

function goalMet(goals: readonly Goal[], value: number, ratio: number | undefined): boolean | null {
  if (goals.length === 0) return null;
  return goals.every((g) => {
    if (g.op === '>=') return value >= g.value;
    if (g.op === '<=') return value <= g.value;
    return ratio !== undefined && ratio >= g.value;
  });
}

function runsOf(b: Bench, quick: boolean): number {
  return quick ? (b.quickRuns ?? 3) : (b.runs ?? 5);
}

function sampleText(b: Bench, quick: boolean): string {
  const size = b.size?.(quick);
  return `${runsOf(b, quick)}${size === undefined ? '' : ` x ${size}`}${quick ? ' (quick)' : ''}`;
}

export async function runBench(b: Bench, quick: boolean): Promise<BenchResult> {
  const n = runsOf(b, quick);
  const result: BenchResult = { name: b.name, value: Number.NaN, unit: b.unit, goal: goalText(b.goals, b.baseline), met: null, runs: [], sample: sampleText(b, quick), quick };
  try {
    await b.setup?.(quick);
    const runs: number[] = [];
    const baseRuns: number[] = [];
    // Interleave the entry and its baseline so drift in machine load hits both alike.
    for (let i = 0; i < n; i++) {
      if (b.baseline) baseRuns.push(await b.baseline.run(quick));
      runs.push(await b.run(quick));
    }
    result.value = median(runs);
    result.runs = runs;
    if (b.baseline) {
      const bv = median(baseRuns);
      result.baseline = { name: b.baseline.name, value: bv };
      result.ratio = bv === 0 ? 0 : result.value / bv;
    }
    result.met = goalMet(b.goals, result.value, result.ratio);
  } finally {
    await b.teardown?.();
  }
  return result;
}

/** A result for an entry that threw or ran out of time: shown as ERROR, counted as missed. */
export function failedResult(b: Bench, quick: boolean, err: unknown): BenchResult {
  return {
    name: b.name,
    value: Number.NaN,
    unit: b.unit,
    goal: goalText(b.goals, b.baseline),
    met: false,
    runs: [],
    sample: sampleText(b, quick),
    quick,
    error: err instanceof Error ? err.message : String(err),
  };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

export function formatTable(results: readonly BenchResult[]): string {
  const rows = [['benchmark', 'median', 'unit', 'goal', 'met', 'baseline (same run)', 'baseline median', 'ratio', 'runs']];
  for (const r of results) {
    rows.push([
      r.name,
      r.error === undefined ? fmt(r.value) : 'ERROR',
      r.unit,
      r.goal,
      r.met === null ? '-' : r.met ? 'yes' : 'NO',
      r.baseline?.name ?? '-',
      r.baseline ? fmt(r.baseline.value) : '-',
      r.ratio === undefined ? '-' : r.ratio.toFixed(2),
      r.sample,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  for (const r of results) if (r.error !== undefined) lines.push(`ERROR ${r.name}: ${r.error.split('\n')[0]}`);
  return lines.join('\n');
}

/** The table's last line: how many figures meet their goal, and which missed. */
export function verdict(results: readonly BenchResult[], quick: boolean, seconds: number): string {
  const withGoal = results.filter((r) => r.met !== null);
  const met = withGoal.filter((r) => r.met === true);
  const missed = withGoal.filter((r) => r.met !== true);
  const noGoal = results.length - withGoal.length;
  const missedText = missed.length === 0 ? '' : `: ${missed.map((r) => (r.error === undefined ? r.name : `${r.name} (ERROR)`)).join(', ')}`;
  return (
    `${results.length} figure${results.length === 1 ? '' : 's'}, ${withGoal.length} with a goal: ${met.length} meet it, ${missed.length} missed${missedText}; ` +
    `${noGoal} without a goal (baselines, p50). ${quick ? 'Quick run (fewer, shorter runs; indicative)' : 'Full run'}, ${seconds.toFixed(0)} s.`
  );
}
