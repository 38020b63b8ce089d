/**
 * The benchmark harness behind `npm run bench` (DESIGN §9): each entry is measured several times and
 * reported as the median, next to a raw-library or transport baseline measured in the same run, so the
 * figures hold on a noisy machine. `--quick` uses fewer and shorter runs; `--json FILE` writes the table.
 */

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
  readonly goals: readonly Goal[];
  readonly baseline?: Measure;
  /** Runs per figure (default 5; 3 with --quick). Slow entries lower it. */
  readonly runs?: number;
  readonly quickRuns?: number;
  readonly setup?: () => Promise<void>;
  readonly teardown?: () => Promise<void>;
}

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  goal: string;
  met: boolean;
  baseline?: { name: string; value: number };
  ratio?: number;
  runs: number[];
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

function goalText(goals: readonly Goal[], baseline?: Measure): string {
  return goals
    .map((g) => (g.op === 'ratio>=' ? `>= ${g.value}x ${baseline?.name ?? 'baseline'}` : `${g.op} ${g.value}`))
    .join(', ');
}

function goalMet(goals: readonly Goal[], value: number, ratio: number | undefined): boolean {
  return goals.every((g) => {
    if (g.op === '>=') return value >= g.value;
    if (g.op === '<=') return value <= g.value;
    return ratio !== undefined && ratio >= g.value;
  });
}

export async function runBench(b: Bench, quick: boolean): Promise<BenchResult> {
  const n = quick ? (b.quickRuns ?? 3) : (b.runs ?? 5);
  await b.setup?.();
  try {
    const runs: number[] = [];
    const baseRuns: number[] = [];
    // Interleave the entry and its baseline so drift in machine load hits both alike.
    for (let i = 0; i < n; i++) {
      if (b.baseline) baseRuns.push(await b.baseline.run(quick));
      runs.push(await b.run(quick));
    }
    const value = median(runs);
    const result: BenchResult = { name: b.name, value, unit: b.unit, goal: goalText(b.goals, b.baseline), met: false, runs };
    if (b.baseline) {
      const bv = median(baseRuns);
      result.baseline = { name: b.baseline.name, value: bv };
      result.ratio = bv === 0 ? 0 : value / bv;
    }
    result.met = goalMet(b.goals, value, result.ratio);
    return result;
  } finally {
    await b.teardown?.();
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

export function formatTable(results: readonly BenchResult[]): string {
  const rows = [['benchmark', 'median', 'unit', 'goal', 'met', 'baseline', 'baseline median', 'ratio']];
  for (const r of results) {
    rows.push([
      r.name,
      fmt(r.value),
      r.unit,
      r.goal,
      r.met ? 'yes' : 'NO',
      r.baseline?.name ?? '-',
      r.baseline ? fmt(r.baseline.value) : '-',
      r.ratio === undefined ? '-' : r.ratio.toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}
