/**
 * S6: overdue executions (QUEUED past their queued deadline; 100,000 by default, BENCH_S6_OVERDUE=1000000 for
 * the size issue 16 names) timed out while 100 devices run S3's
 * start-next -> update loop. fleetjobs: its own running timeout worker (bounded batches: things locked, guarded
 * UPDATE, notifications, events), from the moment the executions fall due until none is left. Baseline: batched raw SQL (10,000-row UPDATEs, each committed) with the same
 * devices running. Reported: sweep time (ratio raw ÷ fleetjobs) and the devices' p99 during the sweep against
 * S3 at N=100 without it. Every overdue execution must end TIMED_OUT (lost otherwise).
 */
import postgres from 'postgres';
import type { BenchSchema } from './lib/db.js';
import type { HostedServer } from './lib/servers.js';
import {
  median,
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import { measureJobs } from './s3-end-to-end.js';

const DEVICES = 100;

/** `overdue` QUEUED executions whose queued deadline passed an hour ago, over 100,000 things × jobs. */
async function seedOverdue(s: BenchSchema, overdue: number): Promise<void> {
  const things = Math.min(100_000, overdue);
  const jobs = Math.ceil(overdue / things);
  await s.db.query(
    `INSERT INTO things (thing_name, thing_id, created_at)
     SELECT 'sweep-thing-' || lpad(g::text, 6, '0'), gen_random_uuid(), now() FROM generate_series(0, $1::int - 1) g`,
    [things],
  );
  await s.db.query(
    `INSERT INTO jobs (job_id, status, target_selection, targets, document, timeout_config, created_at, last_updated_at)
     SELECT 'sweep-job-' || j, 'IN_PROGRESS', 'SNAPSHOT', ARRAY['thinggroup/sweep'], '{}',
       '{"queuedTimeoutInMinutes": 60}', now() - interval '2 hours', now() - interval '2 hours'
     FROM generate_series(0, $1::int - 1) j`,
    [jobs],
  );
  await s.db.query(
    `INSERT INTO job_executions (job_id, thing_name, execution_number, status, queued_at, last_updated_at, queued_deadline)
     SELECT 'sweep-job-' || j, 'sweep-thing-' || lpad(g::text, 6, '0'), 1, 'QUEUED',
       now() - interval '2 hours', now() - interval '2 hours', now() - interval '1 hour'
     FROM generate_series(0, $1::int - 1) j, generate_series(0, $2::int - 1) g
     LIMIT $3`,
    [jobs, things, overdue],
  );
  await s.db.query(`VACUUM ANALYZE things, jobs, job_executions`);
}

async function rawSweep(s: BenchSchema): Promise<Record<string, number>> {
  const sql = postgres(s.url, { max: 1, onnotice: () => {}, connection: { search_path: s.schema } });
  try {
    const t0 = performance.now();
    for (;;) {
      const rows = await sql.unsafe(
        `WITH batch AS (
           SELECT job_id, thing_name, execution_number FROM job_executions
           WHERE timeout_at <= now() AND status IN ('QUEUED', 'IN_PROGRESS')
           ORDER BY timeout_at LIMIT 10000 FOR UPDATE SKIP LOCKED)
         UPDATE job_executions e SET status = 'TIMED_OUT', version_number = e.version_number + 1, last_updated_at = now()
         FROM batch b
         WHERE e.job_id = b.job_id AND e.thing_name = b.thing_name AND e.execution_number = b.execution_number
         RETURNING 1`,
      );
      if (rows.length === 0) break;
    }
    return { sweepMs: performance.now() - t0 };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const overdueLeft = async (s: BenchSchema): Promise<number> => {
  const rows = await s.db.query<{ n: number }>(
    `SELECT count(*) AS n FROM job_executions WHERE job_id LIKE 'sweep-job-%' AND status <> 'TIMED_OUT'`,
  );
  return rows[0]?.n ?? 0;
};

/**
 * Whether any seeded execution is still pending, read off the timeout index (only the seeded executions have a
 * deadline). Polled every 100 ms during the sweep: a count over 1,000,000 rows there kept a core busy and slowed
 * the very sweep it timed.
 */
const anyOverdueLeft = async (s: BenchSchema): Promise<boolean> => {
  const rows = await s.db.query<{ left: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM job_executions
       WHERE timeout_at IS NOT NULL AND status IN ('QUEUED', 'IN_PROGRESS') AND job_id LIKE 'sweep-job-%') AS left`,
  );
  return rows[0]?.left === true;
};

/**
 * The server runs two hours behind, so its timeout worker sees nothing overdue; putting its clock right makes
 * every seeded execution overdue at once, and the worker's next tick starts the sweep. Done when none is left.
 */
async function releaseSweep(server: HostedServer, s: BenchSchema): Promise<Record<string, number>> {
  const t0 = performance.now();
  await server.child.call('setClockBehind', { ms: 0 });
  while (await anyOverdueLeft(s)) {
    if (performance.now() - t0 > 600_000) throw new Error('the timeout worker did not finish in 10 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { sweepMs: performance.now() - t0 };
}

export async function runS6(ctx: RunContext, earlier: readonly ResultRow[]): Promise<ResultRow[]> {
  // Issue 16 names 1,000,000; 100,000 keeps a full run within the hour on this machine (see README).
  const overdue = ctx.smoke ? 20_000 : Number(process.env.BENCH_S6_OVERDUE ?? 100_000);
  const durationMs = ctx.smoke ? 3_000 : 15_000;
  const jobs = Math.min(200, Math.ceil((5_000 * durationMs) / 1000 / DEVICES) + 1);
  const measure = async (variant: Variant): Promise<Measurement> => {
    let left = 0;
    const { m } = await measureJobs(ctx, {
      n: DEVICES,
      jobs,
      durationMs,
      clockBehindMs: 2 * 3_600_000,
      seed: (s) => seedOverdue(s, overdue),
      during: async (server, s) => {
        const r = variant === 'baseline' ? await rawSweep(s) : await releaseSweep(server, s);
        left = await overdueLeft(s);
        return r;
      },
    });
    return {
      ...m,
      variant,
      value: Number(m.extra.sweepMs),
      counters: { ...m.counters, lost: m.counters.lost + left },
      extra: { ...m.extra, devicePairsPerSec: m.value },
    };
  };
  const runs: Measurement[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of (rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline']) as Variant[]) {
      ctx.log(`S6 ${overdue} overdue rep ${rep + 1}/${ctx.reps} ${v}`);
      const m = await measure(v);
      ctx.log(`S6 ${v}: sweep ${m.value.toFixed(0)} ms, device p99 ${m.latency?.p99Ms} ms`);
      runs.push(m);
    }
  }
  const s3 = earlier.find((r) => r.id === 'S3' && r.title.endsWith(`N=${DEVICES}`));
  const quietP99 = s3 ? medianOf(s3.runs, 'fleetjobs', (m) => m.latency?.p99Ms) : NaN;
  const sweepP99 = medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms);
  const ratio = ratioOf(runs, true);
  const fleetSweep = median(runs.filter((r) => r.variant === 'fleetjobs').map((r) => r.value));
  const rawSweepMs = median(runs.filter((r) => r.variant === 'baseline').map((r) => r.value));
  return [
    {
      id: 'S6',
      title: `time out ${overdue.toLocaleString('en-US')} overdue executions with ${DEVICES} devices running`,
      unit: 'ms',
      lowerIsBetter: true,
      baselineName: 'batched raw SQL',
      runs,
      ratio,
      // Issue 16 set the sweep's target at 2 x (PERFORMANCE.md had 1.5 x); the issue wins.
      target: 'sweep ≤ 2 × baseline; device p99 ≤ 2 × without the sweep',
      met: Number.isNaN(quietP99) ? undefined : fleetSweep <= 2 * rawSweepMs && sweepP99 <= 2 * quietP99,
      notes: [
        `device p99 during the sweep ${sweepP99} ms vs ${Number.isNaN(quietP99) ? '–' : quietP99} ms in S3 N=${DEVICES}`,
      ],
    },
  ];
}
