/**
 * S4: CreateJob for a 100,000-thing group while as many devices as fit here are connected and subscribed to
 * notify-next. Two figures, two baselines, in the same run:
 * - commit time of CreateJob (job row, 100k executions and one fanout outbox row naming the things, one
 *   transaction) vs a raw `INSERT ... SELECT` of the same 100k execution rows;
 * - notifications published per second, from commit until the outbox is empty and every connected device has
 *   its notify-next (the dispatcher's expansion of the fanout row into notify and notify-next rows included),
 *   vs plain Aedes publishing the same messages (notify + notify-next per thing) in a loop.
 * Every connected device must get exactly one notify-next naming the new job (lost / duplicated otherwise).
 */
import { performance } from 'node:perf_hooks';
import type { Child } from './lib/child.js';
import { connectFleet, type Fleet } from './lib/loadgen.js';
import type { NotifyNextStats } from './lib/device-worker.js';
import { startServer, type HostedServer } from './lib/servers.js';
import { createBenchSchema, thingNames, type BenchSchema } from './lib/db.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../src/store/things.js';
import { pgMeter, type ProcessUsage } from './lib/metrics.js';
import {
  median,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import { ROOT } from './s1-request-reply.js';

const JOB = 'bench-fanout';
const epochMs = () => performance.timeOrigin + performance.now();

async function seedGroup(s: BenchSchema, n: number): Promise<void> {
  const now = new Date();
  const names = thingNames(n);
  await insertThingGroup(s.db, { thingGroupName: 'fleet' }, now);
  for (let i = 0; i < n; i += 50_000) {
    await insertThings(s.db, names.slice(i, i + 50_000), now);
    await insertGroupMembers(s.db, 'fleet', names.slice(i, i + 50_000), now);
  }
  await s.db.query(`VACUUM ANALYZE things, thing_group_members`);
}

/** Waits until every connected device has a notify-next naming the job (or timeoutMs). */
async function collectNotifyNext(
  children: readonly Child[],
  expected: number,
  timeoutMs: number,
): Promise<NotifyNextStats> {
  const deadline = Date.now() + timeoutMs;
  const total = async (): Promise<NotifyNextStats> => {
    const all = await Promise.all(children.map((c) => c.call<NotifyNextStats>('notifyNextStats')));
    return all.reduce((a, b) => ({
      things: a.things + b.things,
      duplicated: a.duplicated + b.duplicated,
      lastAt: Math.max(a.lastAt, b.lastAt),
    }));
  };
  while ((await total()).things < expected && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  // Late duplicates need a moment to show up.
  await new Promise((r) => setTimeout(r, 500));
  return total();
}

async function withDevices<T>(
  server: HostedServer,
  n: number,
  devices: number,
  fn: (fleet: Fleet) => Promise<T>,
): Promise<T> {
  const fleet = await connectFleet({
    host: server.host,
    port: server.port,
    // Every (n/devices)-th thing, so that the connected ones are spread over the whole group.
    thingNames: thingNames(n)
      .filter((_, i) => i % Math.floor(n / devices) === 0)
      .slice(0, devices),
    processes: devices > 1000 ? 2 : 1,
    root: ROOT,
    clean: true,
    subscribe: 'notify-next',
    connectConcurrency: 200,
  });
  try {
    for (const c of fleet.children) await c.call('watchNotifyNext', { jobId: JOB });
    return await fn(fleet);
  } finally {
    await fleet.close();
  }
}

interface Pair {
  commit: Measurement;
  notify: Measurement;
}

async function measure(ctx: RunContext, variant: Variant, n: number, devices: number): Promise<Pair> {
  const s = await createBenchSchema(ctx.pgUrl);
  const pg = pgMeter(ctx.pgUrl);
  try {
    await seedGroup(s, n);
    const server = await startServer(variant === 'baseline' ? 'aedes-echo' : 'fleetjobs', {
      url: s.url,
      schema: s.schema,
    });
    try {
      return await withDevices(server, n, devices, async (fleet) => {
        ctx.log(`S4 ${variant}: ${fleet.size} devices connected`);
        await pg.start();
        await server.child.call('meterStart');
        let commitMs: number;
        let published: number;
        let start: number;
        let drainedAt: number;
        if (variant === 'baseline') {
          const now = new Date();
          const t0 = performance.now();
          await s.db.transaction(async (tx) => {
            await tx.query(
              `INSERT INTO jobs (job_id, status, target_selection, targets, document, created_at, last_updated_at)
               VALUES ($1, 'IN_PROGRESS', 'SNAPSHOT', ARRAY['thinggroup/fleet'], '{}', $2, $2)`,
              [JOB, now],
            );
            await tx.query(
              `INSERT INTO job_executions (job_id, thing_name, execution_number, status, queued_at, last_updated_at)
               SELECT $1, thing_name, 1, 'QUEUED', $2, $2 FROM thing_group_members WHERE thing_group_name = 'fleet'`,
              [JOB, now],
            );
          });
          commitMs = performance.now() - t0;
          const ts = Math.floor(Date.now() / 1000);
          const payload = JSON.stringify({
            timestamp: ts,
            execution: {
              jobId: JOB,
              status: 'QUEUED',
              queuedAt: ts,
              lastUpdatedAt: ts,
              versionNumber: 1,
              executionNumber: 1,
              jobDocument: { operation: 'bench-fanout' },
            },
          });
          const topics = thingNames(n).flatMap((t) => {
            const root = ROOT.replace('{thingName}', t);
            return [`${root}/notify`, `${root}/notify-next`];
          });
          published = topics.length;
          start = epochMs();
          const r = await server.child.call<{ ms: number }>('publishLoop', { topics, payload, window: 500 });
          drainedAt = start + r.ms;
        } else {
          const before = await outboxLastId(s);
          const r = await server.child.call<{ ms: number }>('createJob', { jobId: JOB, group: 'fleet' });
          commitMs = r.ms;
          start = epochMs();
          // The fanout row lives until its last chunk is expanded: counted now, it is still there.
          const fanouts = await s.db.query<{ n: number }>(
            `SELECT count(*) AS n FROM outbox WHERE kind = 'fanout'`,
          );
          drainedAt = await waitOutboxEmpty(s, 600_000);
          // Every outbox row written since, less the fanout rows the notify and notify-next rows came from.
          published = (await outboxLastId(s)) - before - (fanouts[0]?.n ?? 0);
        }
        ctx.log(
          `S4 ${variant}: committed in ${Math.round(commitMs)} ms, ${published} notifications published`,
        );
        const got = await collectNotifyNext(fleet.children, fleet.size, 120_000);
        const end = Math.max(drainedAt, got.lastAt);
        const serverUsage = await server.child.call<ProcessUsage>('meterStop');
        await server.child.call('stop');
        const pgUsage = await pg.stop();
        const counters = { lost: fleet.size - got.things, duplicated: got.duplicated, doubleClaimed: 0 };
        return {
          commit: {
            variant,
            value: commitMs,
            usage: [serverUsage],
            pg: pgUsage,
            counters,
            extra: { things: n },
          },
          notify: {
            variant,
            value: published / ((end - start) / 1000),
            usage: [serverUsage],
            counters: { lost: 0, duplicated: 0, doubleClaimed: 0 },
            extra: {
              published,
              devices: fleet.size,
              deliveredToAllMs: Math.round(got.lastAt - start),
              drainMs: Math.round(drainedAt - start),
            },
          },
        };
      });
    } finally {
      await server.child.exit();
    }
  } finally {
    await pg.close();
    await s.drop();
  }
}

async function outboxLastId(s: BenchSchema): Promise<number> {
  const rows = await s.db.query<{ id: number | null }>(
    `SELECT pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')) AS id`,
  );
  return rows[0]?.id ?? 0;
}

async function waitOutboxEmpty(s: BenchSchema, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await s.db.query<{ n: number }>(`SELECT count(*) AS n FROM outbox`);
    if ((rows[0]?.n ?? 0) === 0) return epochMs();
    if (Date.now() > deadline) throw new Error('the outbox did not drain in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runS4(ctx: RunContext): Promise<ResultRow[]> {
  const n = ctx.smoke ? 5_000 : 100_000;
  const devices = ctx.smoke ? 200 : 5_000;
  const commits: Measurement[] = [];
  const notifies: Measurement[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of (rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline']) as Variant[]) {
      ctx.log(`S4 ${n} things rep ${rep + 1}/${ctx.reps} ${v}`);
      const p = await measure(ctx, v, n, devices);
      ctx.log(
        `S4 ${v}: commit ${p.commit.value.toFixed(0)} ms, ${p.notify.value.toFixed(0)} notifications/s`,
      );
      commits.push(p.commit);
      notifies.push(p.notify);
    }
  }
  const fCommit = median(commits.filter((m) => m.variant === 'fleetjobs').map((m) => m.value));
  const bCommit = median(commits.filter((m) => m.variant === 'baseline').map((m) => m.value));
  const fNotify = median(notifies.filter((m) => m.variant === 'fleetjobs').map((m) => m.value));
  return [
    {
      id: 'S4',
      title: `CreateJob commit, ${n.toLocaleString('en-US')} things`,
      unit: 'ms',
      lowerIsBetter: true,
      baselineName: 'raw INSERT … SELECT',
      runs: commits,
      ratio: ratioOf(commits, true),
      target: 'commit ≤ 2 s and ≤ 2 × raw',
      met: fCommit <= 2_000 && fCommit <= 2 * bCommit,
      notes: [],
    },
    {
      id: 'S4',
      title: `notifications after CreateJob, ${devices.toLocaleString('en-US')} devices connected`,
      unit: 'msg/s',
      lowerIsBetter: false,
      baselineName: 'raw Aedes publish loop',
      runs: notifies,
      ratio: ratioOf(notifies),
      target: '≥ 10,000 notifications/s',
      met: fNotify >= 10_000,
      notes: [],
    },
  ];
}
