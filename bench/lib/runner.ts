import type { LatencySummary } from './hist.js';
import type { PgUsage, ProcessUsage } from './metrics.js';

export type Variant = 'baseline' | 'fleetjobs';

export interface CorrectnessCounters {
  lost: number;
  duplicated: number;
  doubleClaimed: number;
}

/** One measured run of one variant. */
export interface Measurement {
  variant: Variant;
  /** The scenario's figure of merit in `unit` (higher is better unless the row says lowerIsBetter). */
  value: number;
  latency?: LatencySummary | undefined;
  usage: ProcessUsage[];
  pg?: PgUsage | undefined;
  counters: CorrectnessCounters;
  /** Other figures worth reporting (rejected replies, notifications seen, recovery time...). */
  extra: Record<string, number | string>;
  /** A run already reported in another row, shown again here: its counters are totalled there only. */
  repeated?: true;
}

export interface Ratio {
  median: number;
  min: number;
  max: number;
}

export interface ResultRow {
  id: string;
  title: string;
  unit: string;
  lowerIsBetter: boolean;
  baselineName: string;
  runs: Measurement[];
  /** fleetjobs / baseline per repetition (baseline / fleetjobs when lower is better, so > 1 is always better). */
  ratio: Ratio | undefined;
  target: string;
  /** Whether the target holds on the medians; undefined when it cannot be judged from this row alone. */
  met: boolean | undefined;
  notes: string[];
}

export interface RunContext {
  smoke: boolean;
  reps: number;
  durationMs: number;
  pgUrl: string;
  log(message: string): void;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * Runs baseline and fleetjobs alternately, reps times, swapping which goes first every repetition so that a
 * drift in the machine (page cache, CPU frequency, other load) falls on both alike.
 */
export async function interleave(
  ctx: RunContext,
  label: string,
  run: Record<Variant, () => Promise<Measurement>>,
): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    const order: Variant[] = rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline'];
    for (const v of order) {
      ctx.log(`${label} rep ${rep + 1}/${ctx.reps} ${v}`);
      const m = await run[v]();
      ctx.log(
        `${label} rep ${rep + 1}/${ctx.reps} ${v}: ${m.value.toFixed(1)}${m.latency ? ` p99 ${m.latency.p99Ms} ms` : ''}`,
      );
      out.push(m);
    }
  }
  return out;
}

/** Ratio per repetition, pairing the i-th baseline with the i-th fleetjobs run. */
export function ratioOf(runs: readonly Measurement[], lowerIsBetter = false): Ratio | undefined {
  const b = runs.filter((r) => r.variant === 'baseline').map((r) => r.value);
  const f = runs.filter((r) => r.variant === 'fleetjobs').map((r) => r.value);
  const rs: number[] = [];
  for (let i = 0; i < Math.min(b.length, f.length); i++) {
    const bi = b[i] as number;
    const fi = f[i] as number;
    if (bi > 0 && fi > 0) rs.push(lowerIsBetter ? bi / fi : fi / bi);
  }
  if (rs.length === 0) return undefined;
  return { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) };
}

export function medianOf(
  runs: readonly Measurement[],
  variant: Variant,
  pick: (m: Measurement) => number | undefined,
): number {
  return median(
    runs
      .filter((r) => r.variant === variant)
      .map(pick)
      .filter((x): x is number => x !== undefined),
  );
}

export function correctnessTotal(rows: readonly ResultRow[]): CorrectnessCounters {
  const total = { lost: 0, duplicated: 0, doubleClaimed: 0 };
  for (const row of rows)
    for (const r of row.runs) {
      if (r.repeated) continue;
      total.lost += r.counters.lost;
      total.duplicated += r.counters.duplicated;
      total.doubleClaimed += r.counters.doubleClaimed;
    }
  return total;
}
