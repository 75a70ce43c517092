/**
 * S3: end to end. N devices on MQTT each loop start-next -> update SUCCEEDED (expectedVersion) against the whole
 * fleetjobs server on PostgreSQL, with notify-next subscribed as a device agent does; every thing has more
 * QUEUED executions than the run can finish. Three kinds of rows:
 * - closed loop (throughput), N = 100 and 1,000: against min(S1 baseline in pairs/s (two round trips per
 *   pair), S2 baseline) from the same run, what the broker alone and the database alone can do;
 * - the same at N = 100 over a table that already holds 1,000,000 finished executions, against the plain
 *   N = 100 runs it alternates with: whether the claim path stays fast as history grows;
 * - against the broker floor, closed loop, N = 200 and 1,000: plain Aedes answering the same topics from memory
 *   (server kind aedes-jobs), the same devices and workload, alternating with the fleetjobs runs of that size;
 * - open loop (latency), N = 1,000 at a stated rate (BENCH_S3_RATE pairs/s, default 500): p99 per pair from
 *   its scheduled start, the target's measure; the same schedule against the broker floor beside it.
 */
import { connectFleet, type Fleet, type FleetRun } from './lib/loadgen.js';
import { insertThings } from '../src/store/things.js';
import { startServer, type HostedServer } from './lib/servers.js';
import { countExecutions, createBenchSchema, seedFleet, thingNames, type BenchSchema } from './lib/db.js';
import { pgMeter, type PgUsage, type ProcessUsage } from './lib/metrics.js';
import {
  interleave,
  median,
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
} from './lib/runner.js';
import { asPaced, envNumber, pacedRow } from './lib/paced.js';
import { ROOT } from './s1-request-reply.js';

export interface JobsRun {
  fleet: FleetRun;
  server: ProcessUsage;
  pg: PgUsage;
  succeeded: number;
}

/** Unmeasured load before each timed run. */
export const WARMUP_MS = 1_000;

/**
 * The same load, unmeasured, for WARMUP_MS first: database connections opened and statements prepared, hot code
 * optimised, as on a server that has been running; without it the first second's set-up lands in the p99.
 * Returns its correctness counters, which count like the timed run's.
 */
export async function warmUp(
  ctx: RunContext,
  fleet: Fleet,
  workload: 'jobs' | 'echo',
  ratePerSec: number | undefined,
) {
  // Smoke checks correctness only; its few seeded jobs are for the timed run.
  if (ctx.smoke) return { lost: 0, duplicated: 0, doubleClaimed: 0, completed: 0 };
  const r = await fleet.run({
    workload,
    durationMs: WARMUP_MS,
    replyTimeoutMs: 60_000,
    ...(ratePerSec === undefined ? {} : { ratePerSec }),
  });
  return r.counters;
}

/** Echo devices on a plain-Aedes server at ratePerSec pairs of `get`s, after the warm-up; counters of both. */
export async function runPacedEcho(ctx: RunContext, server: HostedServer, fleet: Fleet, ratePerSec: number) {
  const warm = await warmUp(ctx, fleet, 'echo', ratePerSec);
  await server.child.call('meterStart');
  const r = await fleet.run({
    workload: 'echo',
    durationMs: ctx.durationMs,
    replyTimeoutMs: 60_000,
    ratePerSec,
  });
  const usage = await server.child.call<ProcessUsage>('meterStop');
  const counters = {
    lost: r.counters.lost + warm.lost,
    duplicated: r.counters.duplicated + warm.duplicated,
    doubleClaimed: 0,
  };
  return { r, usage, counters };
}

/** The device batcher's totals (server host's batchStats). */
interface BatchStats {
  count: number;
  writes: number;
  seconds: number;
}

/** Device-write batches of the timed run: how many, their mean size and mean duration (statement + commit). */
function batchFigures(before: BatchStats, after: BatchStats): Record<string, number> {
  const batches = after.count - before.count;
  if (batches === 0) return {};
  return {
    batches,
    writesPerBatch: Math.round(((after.writes - before.writes) / batches) * 10) / 10,
    batchMeanMs: Math.round(((after.seconds - before.seconds) / batches) * 10000) / 10,
  };
}

/**
 * Runs the start-next -> update loop for durationMs on a seeded schema against a fleetjobs server.
 */
export async function measureJobs(
  ctx: RunContext,
  opts: {
    n: number;
    jobs: number;
    durationMs?: number;
    /** More rows to put in the schema before the server starts (S6's overdue executions). */
    seed?: (s: BenchSchema) => Promise<void>;
    /** Start the server's clock this far behind (S6: nothing is overdue until the sweep is let go). */
    clockBehindMs?: number;
    /** Idle persistent sessions (clean: false, notify-next) held while the devices run (S5). */
    idleSessions?: number;
    /** Runs while the devices do (S6's sweep); its figures join the run's extra. */
    during?: (server: HostedServer, s: BenchSchema) => Promise<Record<string, number>>;
    /** Open loop at this many pairs/s for the whole fleet (see lib/paced.ts); closed loop without. */
    ratePerSec?: number;
  },
): Promise<{ m: Measurement; run: JobsRun }> {
  const s = await createBenchSchema(ctx.pgUrl);
  try {
    await seedFleet(s, opts.n, opts.jobs);
    await opts.seed?.(s);
    const server = await startServer('fleetjobs', {
      url: s.url,
      schema: s.schema,
      poolMax: 10,
      ...(opts.clockBehindMs ? { clockBehindMs: opts.clockBehindMs } : {}),
    });
    const pg = pgMeter(ctx.pgUrl, server.applicationName);
    let idle: Fleet | undefined;
    try {
      if (opts.idleSessions) idle = await holdIdleSessions(s, server, opts.idleSessions);
      const idleSessions = idle?.size;
      const fleet = await connectFleet({
        host: server.host,
        port: server.port,
        thingNames: thingNames(opts.n),
        processes: opts.n >= 1000 ? 2 : 1,
        root: ROOT,
        clean: true,
        subscribe: 'replies+notify-next',
        connectConcurrency: 100,
      });
      let fleetRun: FleetRun;
      let warm: Pick<FleetRun['counters'], 'lost' | 'duplicated' | 'doubleClaimed' | 'completed'>;
      let serverUsage: ProcessUsage;
      let extra: Record<string, number> = {};
      try {
        warm = await warmUp(ctx, fleet, 'jobs', opts.ratePerSec);
        await pg.start();
        const batchesBefore = await server.child.call<BatchStats>('batchStats');
        await server.child.call('meterStart');
        const during = opts.during?.(server, s);
        fleetRun = await fleet.run({
          workload: 'jobs',
          durationMs: opts.durationMs ?? ctx.durationMs,
          replyTimeoutMs: 60_000,
          ...(opts.ratePerSec === undefined ? {} : { ratePerSec: opts.ratePerSec }),
        });
        extra = (await during) ?? {};
        serverUsage = await server.child.call<ProcessUsage>('meterStop');
        pg.endLoad();
        extra = {
          ...extra,
          ...batchFigures(batchesBefore, await server.child.call<BatchStats>('batchStats')),
        };
      } finally {
        await fleet.close();
      }
      await idle?.close();
      idle = undefined;
      await server.child.call('stop');
      const pgUsage = await pg.stop();
      const counts = await countExecutions(s.db);
      const succeeded = counts.SUCCEEDED ?? 0;
      const c = fleetRun.counters;
      const m: Measurement = {
        variant: 'fleetjobs',
        value: c.completed / (fleetRun.elapsedMs / 1000),
        latency: fleetRun.latency,
        usage: [serverUsage, ...fleetRun.usage],
        pg: pgUsage,
        counters: {
          // Unanswered requests, and SUCCEEDED replies whose change the database does not hold.
          lost: c.lost + warm.lost + Math.max(0, c.completed + warm.completed - succeeded),
          duplicated: c.duplicated + warm.duplicated,
          doubleClaimed: c.doubleClaimed + warm.doubleClaimed,
        },
        extra: {
          devices: fleet.size,
          rejected: c.rejected,
          ...Object.fromEntries(Object.entries(fleetRun.rejectCodes).map(([k, v]) => [`rejected:${k}`, v])),
          notifyNextPerSec: c.notifyNext / (fleetRun.elapsedMs / 1000),
          drained: c.drained,
          lateReplies: c.late,
          ...(idleSessions === undefined ? {} : { idleSessions }),
          ...extra,
        },
      };
      return { m, run: { fleet: fleetRun, server: serverUsage, pg: pgUsage, succeeded } };
    } finally {
      await idle?.close();
      await pg.close();
      await server.child.exit();
    }
  } finally {
    await s.drop();
  }
}

export const idleNames = (n: number) =>
  Array.from({ length: n }, (_, i) => `idle-thing-${String(i).padStart(6, '0')}`);

/** Idle devices as a fleet keeps them: persistent sessions subscribed to notify-next, ~9,500 per process. */
export async function holdIdleSessions(
  s: BenchSchema | undefined,
  server: HostedServer,
  n: number,
): Promise<Fleet> {
  if (s) await insertThings(s.db, idleNames(n), new Date());
  return connectFleet({
    host: server.host,
    port: server.port,
    thingNames: idleNames(n),
    processes: Math.ceil(n / 9_500),
    root: ROOT,
    clean: false,
    subscribe: 'notify-next',
    connectConcurrency: 200,
  });
}

/** Enough QUEUED executions per thing that no device runs dry at up to 2,000 pairs/s (capped for seeding time). */
export const jobsFor = (ctx: RunContext, n: number) =>
  ctx.smoke ? 3 : Math.min(100, Math.ceil((2_000 * (ctx.durationMs + WARMUP_MS)) / 1000 / n) + 1);

/**
 * Finished history for the hot-table variant: `rows` SUCCEEDED executions spread over the n things, one per
 * thing per finished job (rows ÷ n COMPLETED jobs), older than everything pending, written set-based.
 */
async function seedHistory(s: BenchSchema, n: number, rows: number): Promise<void> {
  const jobs = Math.ceil(rows / n);
  await s.db.query(
    `INSERT INTO jobs (job_id, status, target_selection, targets, document, created_at, last_updated_at,
       completed_at)
     SELECT 'history-' || lpad(j::text, 7, '0'), 'COMPLETED', 'SNAPSHOT', ARRAY['thinggroup/fleet'],
       '{"operation":"history"}', now() - interval '30 days', now() - interval '30 days', now() - interval '30 days'
     FROM generate_series(0, $1::int - 1) j`,
    [jobs],
  );
  await s.db.query(
    `INSERT INTO job_executions (job_id, thing_name, execution_number, status, version_number, queued_at,
       started_at, last_updated_at)
     SELECT 'history-' || lpad((i / $1::int)::text, 7, '0'), ($3::text[])[i % $1::int + 1],
       1, 'SUCCEEDED', 3, t, t, t
     FROM generate_series(0, $2::int - 1) i,
       LATERAL (SELECT now() - interval '30 days' + i * interval '1 ms' AS t) ts`,
    [n, rows, thingNames(n)],
  );
  await s.db.query(`VACUUM ANALYZE jobs, job_executions`);
  // Otherwise the checkpoint that writing ~1 GB of WAL starts runs during the measurement, and the row
  // measures the disk flushing the seed (it halved pairs/s here), not the size of the table.
  await s.db.query(`CHECKPOINT`);
}

/**
 * S3's broker floor: the same devices, workload and schedule against plain Aedes answering start-next and update
 * from memory (server kind aedes-jobs), warm-up included. Closed loop without ratePerSec.
 */
async function measureMemoryJobs(
  ctx: RunContext,
  n: number,
  jobs: number,
  ratePerSec?: number,
): Promise<Measurement> {
  const server = await startServer('aedes-jobs', { memoryFleet: { thingNames: thingNames(n), jobs } });
  try {
    const fleet = await connectFleet({
      host: server.host,
      port: server.port,
      thingNames: thingNames(n),
      processes: n >= 1000 ? 2 : 1,
      root: ROOT,
      clean: true,
      subscribe: 'replies+notify-next',
      connectConcurrency: 100,
    });
    try {
      const warm = await warmUp(ctx, fleet, 'jobs', ratePerSec);
      await server.child.call('meterStart');
      const r = await fleet.run({
        workload: 'jobs',
        durationMs: ctx.durationMs,
        replyTimeoutMs: 60_000,
        ...(ratePerSec === undefined ? {} : { ratePerSec }),
      });
      const usage = await server.child.call<ProcessUsage>('meterStop');
      const c = r.counters;
      const m: Measurement = {
        variant: 'baseline',
        value: c.completed / (r.elapsedMs / 1000),
        latency: r.latency,
        usage: [usage, ...r.usage],
        counters: {
          lost: c.lost + warm.lost,
          duplicated: c.duplicated + warm.duplicated,
          doubleClaimed: c.doubleClaimed + warm.doubleClaimed,
        },
        extra: {
          devices: fleet.size,
          rejected: c.rejected,
          notifyNextPerSec: c.notifyNext / (r.elapsedMs / 1000),
          drained: c.drained,
        },
      };
      return ratePerSec === undefined ? m : asPaced(m, r.schedule);
    } finally {
      await fleet.close();
    }
  } finally {
    await server.child.exit();
  }
}

/** S3 against its broker floor, closed loop: fleetjobs ÷ the in-memory server on the same broker, same run. */
function floorRow(n: number, runs: Measurement[]): ResultRow {
  const ratio = ratioOf(runs);
  return {
    id: 'S3',
    title: `start-next → update SUCCEEDED, N=${n.toLocaleString('en-US')}, against the broker floor`,
    unit: 'pairs/s',
    lowerIsBetter: false,
    baselineName: 'plain Aedes answering the same topics from memory',
    runs,
    ratio,
    target: '≥ 0.6 × the broker floor',
    met: ratio === undefined ? undefined : ratio.median >= 0.6,
    notes: [
      `closed loop, latency per request: p99 ${medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms)} ms vs ${medianOf(runs, 'baseline', (m) => m.latency?.p99Ms)} ms from memory`,
    ],
  };
}

/** The S3 figures of one closed-loop size: pairs/s against min(S1 baseline ÷ 2, S2 baseline). */
function closedRow(earlier: readonly ResultRow[], n: number, runs: Measurement[]): ResultRow {
  const s1 =
    earlier.find((r) => r.id === 'S1' && r.title.endsWith(`N=${n}`)) ?? earlier.find((r) => r.id === 'S1');
  const s2 = earlier.find((r) => r.id === 'S2');
  const s1Pairs = s1 ? medianOf(s1.runs, 'baseline', (m) => m.value) / 2 : NaN;
  const s2Pairs = s2 ? medianOf(s2.runs, 'baseline', (m) => m.value) : NaN;
  const candidates = [s1Pairs, s2Pairs].filter((x) => !Number.isNaN(x));
  const base = candidates.length > 0 ? Math.min(...candidates) : NaN;
  const values = runs.map((r) => r.value);
  const f = median(values);
  // The baseline is one figure derived from S1 and S2; it is recorded as one run so that the report shows it.
  const baselineRun: Measurement = {
    variant: 'baseline',
    value: base,
    usage: [],
    counters: { lost: 0, duplicated: 0, doubleClaimed: 0 },
    extra: { s1BaselinePairsPerSec: s1Pairs, s2BaselinePairsPerSec: s2Pairs },
  };
  return {
    id: 'S3',
    title: `start-next → update SUCCEEDED, N=${n}`,
    unit: 'pairs/s',
    lowerIsBetter: false,
    baselineName: 'min(S1 baseline / 2, S2 baseline)',
    runs: [baselineRun, ...runs],
    ratio: Number.isNaN(base)
      ? undefined
      : { median: f / base, min: Math.min(...values) / base, max: Math.max(...values) / base },
    target: '≥ 0.5 × min(S1, S2); ≥ 5,000 pairs/s (p99: the open-loop row)',
    met: Number.isNaN(base) ? undefined : f >= 0.5 * base && f >= 5_000,
    notes: [
      `closed loop, latency per request: p99 ${median(runs.map((r) => r.latency?.p99Ms ?? NaN))} ms`,
      `notify-next/s ${median(runs.map((r) => Number(r.extra.notifyNextPerSec))).toFixed(0)}`,
    ],
  };
}

export async function runS3(ctx: RunContext, earlier: readonly ResultRow[]): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  // Closed loop: N=100 and 1,000 against min(S1, S2); N=200 and 1,000 against the broker floor, each run beside
  // the fleetjobs runs of its size and alternating with them.
  // BENCH_S3_SIZES=200 (say) runs only those sizes' rows, and the open loop only with 1000 among them.
  const only = process.env.BENCH_S3_SIZES?.split(',').map(Number);
  const sizes = ctx.smoke ? [50] : [100, 200, 1000].filter((n) => only === undefined || only.includes(n));
  const closedSizes = ctx.smoke ? [50] : [100, 1000];
  const floorSizes = ctx.smoke ? [] : [200, 1000];
  // The hot-table variant runs beside N=100, alternating with it, so that their ratio is fair. The smoke run
  // leaves it out, the broker floor and the open loop's baseline too, to stay within its minute.
  const hotN = ctx.smoke ? undefined : 100;
  const history = envNumber('BENCH_S3_HISTORY', 1_000_000);
  for (const n of sizes) {
    const runs: Measurement[] = [];
    const hot: Measurement[] = [];
    const floor: Measurement[] = [];
    const variants = ['plain', ...(n === hotN ? ['hot'] : []), ...(floorSizes.includes(n) ? ['floor'] : [])];
    for (let rep = 0; rep < ctx.reps; rep++) {
      const order = rep % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const label = `S3 N=${n}${v === 'hot' ? ` over ${history} finished executions` : v === 'floor' ? ' broker floor' : ''} rep ${rep + 1}/${ctx.reps}`;
        ctx.log(label);
        const m =
          v === 'floor'
            ? await measureMemoryJobs(ctx, n, jobsFor(ctx, n))
            : (
                await measureJobs(ctx, {
                  n,
                  jobs: jobsFor(ctx, n),
                  ...(v === 'hot' ? { seed: (s: BenchSchema) => seedHistory(s, n, history) } : {}),
                })
              ).m;
        ctx.log(`${label}: ${m.value.toFixed(1)} pairs/s p99 ${m.latency?.p99Ms} ms`);
        (v === 'hot' ? hot : v === 'floor' ? floor : runs).push(m);
      }
    }
    if (closedSizes.includes(n)) rows.push(closedRow(earlier, n, runs));
    if (floorSizes.includes(n)) rows.push(floorRow(n, [...floor, ...runs]));
    if (n !== hotN) continue;
    // Paired per repetition with the plain runs of the same size, which become this row's baseline.
    const hotRuns = [
      ...runs.map((r) => ({ ...r, variant: 'baseline' as const, repeated: true as const })),
      ...hot,
    ];
    const hotRatio = ratioOf(hotRuns);
    rows.push({
      id: 'S3',
      title: `start-next → update SUCCEEDED, N=${n}, over ${history.toLocaleString('en-US')} SUCCEEDED executions`,
      unit: 'pairs/s',
      lowerIsBetter: false,
      baselineName: `the N=${n} row, same run`,
      runs: hotRuns,
      ratio: hotRatio,
      target: '≈ 1 × without them (else archive terminal executions)',
      met: undefined,
      notes: [
        `closed loop; finished history seeded as ${Math.ceil(history / n)} COMPLETED jobs × ${n} things, vacuumed before the run`,
        `p99 per request ${medianOf(hotRuns, 'fleetjobs', (m) => m.latency?.p99Ms)} ms vs ${medianOf(hotRuns, 'baseline', (m) => m.latency?.p99Ms)} ms without`,
      ],
    });
  }

  const n = ctx.smoke ? 50 : 1000;
  if (!sizes.includes(n)) return rows;
  const rate = ctx.smoke ? 50 : envNumber('BENCH_S3_RATE', 500);
  const label = `S3 N=${n} open loop at ${rate} pairs/s`;
  const paced = async () => {
    const { m, run } = await measureJobs(ctx, { n, jobs: jobsFor(ctx, n), ratePerSec: rate });
    return asPaced(m, run.fleet.schedule);
  };
  if (ctx.smoke) ctx.log(label);
  const runs = ctx.smoke
    ? [await paced()]
    : await interleave(ctx, label, {
        baseline: () => measureMemoryJobs(ctx, n, jobsFor(ctx, n), rate),
        fleetjobs: paced,
      });
  rows.push(
    pacedRow({
      id: 'S3',
      title: `start-next → update SUCCEEDED, N=${n.toLocaleString('en-US')}, open loop at ${rate} pairs/s`,
      baselineName: 'the broker floor (plain Aedes answering from memory), same schedule',
      runs,
      targetMs: 50,
    }),
  );
  return rows;
}
