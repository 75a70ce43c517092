/** Plain-text output for people: aligned tables, times, and the job progress bar. */
import { PROGRESS_ORDER, STATUS_COUNTERS, isTerminal, type StatusCounts } from '../../protocol/states.js';

export function table(headers: string[], rows: (string | number | undefined | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === null ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Control-plane times are epoch seconds (with a fraction); shown as ISO 8601 in UTC. */
export function time(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '';
  return new Date(value * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type ProcessDetails = Partial<StatusCounts>;

/** Each status's counter, label (`timed out`) and whether it is finished, from the status table. */
const COUNTERS = PROGRESS_ORDER.map(
  (s) => [STATUS_COUNTERS[s], s.toLowerCase().replace('_', ' '), isTerminal(s)] as const,
);

export function counts(d: ProcessDetails | undefined): {
  done: number;
  total: number;
  parts: [string, number][];
} {
  let done = 0;
  let total = 0;
  const parts: [string, number][] = [];
  for (const [key, label, terminal] of COUNTERS) {
    const n = d?.[key] ?? 0;
    total += n;
    if (terminal) done += n;
    parts.push([label, n]);
  }
  return { done, total, parts };
}

/** `[##########----------]  50%  5/10 done  succeeded 4, failed 1, in progress 2, queued 3` */
export function progressLine(status: string, d: ProcessDetails | undefined, width = 30): string {
  const { done, total, parts } = counts(d);
  const ratio = total === 0 ? 0 : done / total;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const pct = `${Math.floor(ratio * 100)}%`.padStart(4);
  const detail = parts
    .filter(([, n]) => n > 0)
    .map(([label, n]) => `${label} ${n}`)
    .join(', ');
  return `${bar} ${pct}  ${done}/${total} done  ${status}${detail ? `  ${detail}` : ''}`;
}
