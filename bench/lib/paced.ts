/**
 * Open-loop (paced) rows: devices start pairs on a schedule at a stated rate and latency runs from each pair's
 * scheduled start. A closed loop cannot judge a latency target: by Little's law its mean latency is N ÷
 * throughput whatever the server does (1,000 devices at 1,000 pairs/s wait ~1 s per pair).
 */
import type { Schedule } from './loadgen.js';
import { medianOf, ratioOf, type Measurement, type ResultRow } from './runner.js';

/** A positive number from the environment, or the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = raw === undefined ? fallback : Number(raw);
  if (!(v > 0)) throw new Error(`${name} must be a positive number, not ${raw}`);
  return v;
}

/** An open-loop measurement: its figure of merit is the p99 per pair, its schedule goes with the run. */
export function asPaced(m: Measurement, s: Schedule | undefined): Measurement {
  if (!s) throw new Error('not an open-loop run');
  return {
    ...m,
    value: m.latency?.p99Ms ?? NaN,
    extra: {
      ...m.extra,
      ratePerSec: s.ratePerSec,
      achievedPerSec: s.achievedPerSec,
      scheduleKept: s.kept ? 'yes' : 'no',
      scheduledPairs: s.scheduled,
      skippedPairs: s.skipped,
      overrunMs: s.overrunMs,
      startLagP99Ms: s.startLagP99Ms,
      startLagMaxMs: s.startLagMaxMs,
      requestP50Ms: s.requests.p50Ms,
      requestP99Ms: s.requests.p99Ms,
    },
  };
}

/** The row of an absolute p99 target, judged on fleetjobs' median p99 per pair and on every schedule kept. */
export function pacedRow(args: {
  id: string;
  title: string;
  baselineName: string;
  runs: Measurement[];
  targetMs: number;
}): ResultRow {
  const fleet = args.runs.filter((r) => r.variant === 'fleetjobs');
  const notKept = args.runs.filter((r) => r.extra.scheduleKept !== 'yes');
  const p99 = medianOf(args.runs, 'fleetjobs', (m) => m.value);
  const hasBaseline = args.runs.some((r) => r.variant === 'baseline');
  /** fleetjobs' median of an extra figure, and the baseline's beside it when there is one. */
  const med = (k: string, unit = '') => {
    const of = (v: 'baseline' | 'fleetjobs') => medianOf(args.runs, v, (m) => Number(m.extra[k])).toFixed(1);
    return `fleetjobs ${of('fleetjobs')}${unit}${hasBaseline ? `, baseline ${of('baseline')}${unit}` : ''}`;
  };
  return {
    id: args.id,
    title: args.title,
    unit: 'ms p99',
    lowerIsBetter: true,
    baselineName: args.baselineName,
    runs: args.runs,
    ratio: ratioOf(args.runs, true),
    target: `p99 ≤ ${args.targetMs} ms per pair at the stated rate`,
    met: fleet.length > 0 && fleet.every((r) => r.extra.scheduleKept === 'yes') && p99 <= args.targetMs,
    notes: [
      'open loop: latency per pair (two round trips) from its scheduled start',
      `achieved pairs/s ${med('achievedPerSec')}`,
      `p99 per request ${med('requestP99Ms', ' ms')}`,
      // A server that falls behind shows here: devices start late and the last replies come after the end.
      `start lag p99 ${med('startLagP99Ms', ' ms')}; last reply after the end ${med('overrunMs', ' ms')}`,
      notKept.length === 0
        ? 'stated load offered in every run'
        : `stated load NOT offered in ${notKept.length} run(s): ${notKept.map((r) => `${r.variant} ${Number(r.extra.achievedPerSec).toFixed(0)}/s, ${r.extra.skippedPairs} skipped`).join('; ')}`,
    ],
  };
}
