import os from 'node:os';
import postgres from 'postgres';
import { correctnessTotal, medianOf, type Measurement, type ResultRow } from './runner.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  postgres: string;
  synchronousCommit: string;
}

export async function describeMachine(pgUrl: string): Promise<Machine> {
  const sql = postgres(pgUrl, { max: 1, onnotice: () => {} });
  try {
    const [v] = await sql<{ version: string; sc: string }[]>`
      SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sc`;
    return {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres: v?.version ?? 'unknown',
      synchronousCommit: v?.sc ?? 'unknown',
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const fmt = (x: number | undefined, digits = 1): string =>
  x === undefined || Number.isNaN(x)
    ? '–'
    : x >= 100
      ? Math.round(x).toLocaleString('en-US')
      : x.toFixed(digits);

function usageCell(m: Measurement): string {
  return m.usage
    .map((u) => `${u.role} ${fmt(u.cpuSeconds, 2)} s/${u.rssMb} MB/eld p99 ${fmt(u.eventLoopP99Ms)} ms`)
    .join('; ');
}

function runLine(row: ResultRow, m: Measurement, i: number): string {
  const l = m.latency;
  const pg = m.pg
    ? `${m.pg.commits} commits (${m.pg.writeXacts} write xacts), ${fmt(m.pg.walMb)} MB WAL${m.pg.backendCpuSeconds === undefined ? '' : `, server's backends ${fmt(m.pg.backendCpuSeconds, 2)} s CPU`}`
    : '–';
  const extra = Object.entries(m.extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
    .join(', ');
  const c = m.counters;
  return `| ${row.id} | ${row.title} | ${i} | ${m.variant} | ${fmt(m.value)} ${row.unit} | ${l ? `${l.p50Ms}/${l.p95Ms}/${l.p99Ms}/${l.maxMs}` : '–'} | ${usageCell(m)} | ${pg} | ${c.lost}/${c.duplicated}/${c.doubleClaimed} | ${extra} |`;
}

export function renderMarkdown(args: {
  date: string;
  machine: Machine;
  rows: ResultRow[];
  errors: { scenario: string; error: string }[];
  smoke: boolean;
  reps: number;
  durationMs: number;
  command: string;
}): string {
  const { machine, rows } = args;
  const total = correctnessTotal(rows);
  const out: string[] = [];
  out.push(`# fleetjobs benchmark ${args.smoke ? '(smoke) ' : ''}${args.date}`, '');
  out.push(
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres} (synchronous_commit=${machine.synchronousCommit}); load generators on the same cores.`,
    `Command: \`${args.command}\`; ${args.reps} interleaved repetitions, ${args.durationMs / 1000} s measured per timed run.`,
    '',
    `Correctness over every run: lost ${total.lost}, duplicated ${total.duplicated}, double-claimed ${total.doubleClaimed}.`,
    '',
    '## Summary (medians; ratio = fleetjobs ÷ baseline per repetition, > 1 is better for fleetjobs, [min–max])',
    '',
    '| id | scenario | baseline | fleetjobs | ratio | fleetjobs p50/p99 ms | target | met |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const row of rows) {
    const b = medianOf(row.runs, 'baseline', (m) => m.value);
    const f = medianOf(row.runs, 'fleetjobs', (m) => m.value);
    const r = row.ratio;
    const p50 = medianOf(row.runs, 'fleetjobs', (m) => m.latency?.p50Ms);
    const p99 = medianOf(row.runs, 'fleetjobs', (m) => m.latency?.p99Ms);
    out.push(
      `| ${row.id} | ${row.title} | ${fmt(b)} ${row.unit} (${row.baselineName}) | ${fmt(f)} ${row.unit} | ${r ? `${r.median.toFixed(2)} [${r.min.toFixed(2)}–${r.max.toFixed(2)}]` : '–'} | ${fmt(p50, 2)} / ${fmt(p99, 2)} | ${row.target} | ${row.met === undefined ? '–' : row.met ? 'yes' : 'no'} |`,
    );
  }
  const notes = rows.filter((r) => r.notes.length > 0);
  if (notes.length > 0) {
    out.push('', '## Notes', '');
    for (const r of notes) out.push(`- ${r.id} ${r.title}: ${r.notes.join('; ')}`);
  }
  if (args.errors.length > 0) {
    out.push('', '## Scenarios that did not run to the end', '');
    for (const e of args.errors) out.push(`- ${e.scenario}: ${e.error.split('\n')[0]}`);
  }
  out.push(
    '',
    '## Every run',
    '',
    'Latency p50/p95/p99/max in ms; per process: CPU seconds / peak RSS / event-loop delay p99; counters lost/duplicated/double-claimed.',
    '',
    '| id | scenario | rep | variant | value | latency | processes | PostgreSQL | counters | other |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const row of rows) {
    const seen: Record<string, number> = {};
    for (const m of row.runs) {
      seen[m.variant] = (seen[m.variant] ?? 0) + 1;
      out.push(runLine(row, m, seen[m.variant] as number));
    }
  }
  return out.join('\n') + '\n';
}
