/**
 * S8: cluster mode. The S3 loop (start-next -> update SUCCEEDED, expectedVersion, notify-next subscribed) by N
 * devices over three fleetjobs nodes clustered through Redis (REDIS_URL), the devices dealt out evenly over
 * the nodes, against the same loop on one node without Redis; and one node with Redis, to isolate what Redis
 * costs per message. On one machine three nodes share its cores with PostgreSQL, Redis and the load
 * generators, so the 3-node row is about the price of clustering, not about speed-up.
 *
 * Redis is metered from INFO (commands processed, CPU seconds, network bytes) around each timed run:
 * per pair and per MQTT message written to a device (two replies plus the notify-next each pair causes).
 * BENCH_REDIS_URL (default redis://127.0.0.1:6379/15) names the Redis; its database is flushed before each run.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { connectFleet, type FleetRun } from './lib/loadgen.js';
import { startServer, type HostedServer } from './lib/servers.js';
import { countExecutions, createBenchSchema, seedFleet, thingNames } from './lib/db.js';
import type { ProcessUsage } from './lib/metrics.js';
import { median, ratioOf, type Measurement, type ResultRow, type RunContext } from './lib/runner.js';
import { jobsFor, WARMUP_MS } from './s3-end-to-end.js';
import { ROOT } from './s1-request-reply.js';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

type Variant = 'one' | 'oneRedis' | 'three';

interface RedisUsage {
  commands: number;
  cpuSeconds: number;
  netBytes: number;
}

async function redisInfo(redis: Redis): Promise<RedisUsage> {
  const text = await redis.info();
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    commands: field('total_commands_processed'),
    cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
    netBytes: field('total_net_input_bytes') + field('total_net_output_bytes'),
  };
}

async function measure(ctx: RunContext, variant: Variant, n: number): Promise<Measurement> {
  const s = await createBenchSchema(ctx.pgUrl);
  const redis = new Redis(REDIS_URL);
  const nodes: HostedServer[] = [];
  try {
    await seedFleet(s, n, jobsFor(ctx, n));
    await redis.flushdb();
    const count = variant === 'three' ? 3 : 1;
    const cluster = variant === 'one' ? {} : { redisUrl: REDIS_URL };
    nodes.push(
      ...(await Promise.all(
        Array.from({ length: count }, () =>
          startServer('fleetjobs', { url: s.url, schema: s.schema, poolMax: 10, ...cluster }),
        ),
      )),
    );
    const fleet = await connectFleet({
      host: '127.0.0.1',
      port: 0,
      servers: nodes.map((x) => ({ host: x.host, port: x.port })),
      thingNames: thingNames(n),
      processes: 3,
      root: ROOT,
      clean: false,
      subscribe: 'replies+notify-next',
      connectConcurrency: 100,
    });
    let run: FleetRun;
    let usage: ProcessUsage[];
    let before: RedisUsage;
    let after: RedisUsage;
    let sessions: number[];
    try {
      sessions = await Promise.all(nodes.map((x) => x.child.call<number>('sessions')));
      await fleet.run({ workload: 'jobs', durationMs: WARMUP_MS, replyTimeoutMs: 60_000 });
      await Promise.all(nodes.map((x) => x.child.call('meterStart')));
      before = await redisInfo(redis);
      const t0 = performance.now();
      run = await fleet.run({ workload: 'jobs', durationMs: ctx.durationMs, replyTimeoutMs: 60_000 });
      ctx.log(`S8 ${variant}: timed run ${(performance.now() - t0).toFixed(0)} ms`);
      after = await redisInfo(redis);
      usage = await Promise.all(nodes.map((x) => x.child.call<ProcessUsage>('meterStop')));
    } finally {
      await fleet.close();
    }
    await Promise.all(nodes.map((x) => x.child.call('stop')));
    const succeeded = (await countExecutions(s.db)).SUCCEEDED ?? 0;
    const c = run.counters;
    const pairs = c.completed;
    // Each pair writes two replies to its device and causes one notify-next (the device's next head).
    const messages = 2 * pairs + c.notifyNext;
    const redisCommands = after.commands - before.commands;
    const serverCpu = usage.reduce((a, u) => a + u.cpuSeconds, 0);
    return {
      variant: variant === 'one' ? 'baseline' : 'fleetjobs',
      value: pairs / (run.elapsedMs / 1000),
      latency: run.latency,
      usage: [...usage, ...run.usage],
      counters: {
        // The warm-up's pairs count as completed in the database too, so only a shortfall is a loss.
        lost: c.lost + (succeeded < pairs ? pairs - succeeded : 0),
        duplicated: c.duplicated,
        doubleClaimed: c.doubleClaimed,
      },
      extra: {
        nodes: count,
        sessionsPerNode: sessions.join('/'),
        notifyNextPerSec: c.notifyNext / (run.elapsedMs / 1000),
        serverCpuMsPerPair: (serverCpu * 1000) / Math.max(1, pairs),
        redisCommandsPerPair: redisCommands / Math.max(1, pairs),
        redisCommandsPerMessage: redisCommands / Math.max(1, messages),
        redisCpuUsPerMessage: ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.max(1, messages),
        redisBytesPerMessage: (after.netBytes - before.netBytes) / Math.max(1, messages),
        rejected: c.rejected,
      },
    };
  } finally {
    await Promise.all(nodes.map((x) => x.child.exit()));
    await redis.flushdb().catch(() => undefined);
    await redis.quit();
    await s.drop();
  }
}

const pick = (runs: Measurement[], key: string) =>
  median(runs.filter((r) => r.variant === 'fleetjobs').map((r) => Number(r.extra[key])));

function row(title: string, baselineName: string, runs: Measurement[], notes: string[]): ResultRow {
  return {
    id: 'S8',
    title,
    unit: 'pairs/s',
    lowerIsBetter: false,
    baselineName,
    runs,
    ratio: ratioOf(runs),
    target: 'correctness 0; ratio reported (one machine: no speed-up expected)',
    met: undefined,
    notes,
  };
}

export async function runS8(ctx: RunContext): Promise<ResultRow[]> {
  const n = 300;
  const runs: Record<Variant, Measurement[]> = { one: [], oneRedis: [], three: [] };
  const orders: Variant[][] = [
    ['one', 'oneRedis', 'three'],
    ['three', 'one', 'oneRedis'],
    ['oneRedis', 'three', 'one'],
  ];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of orders[rep % orders.length] as Variant[]) {
      ctx.log(`S8 N=${n} ${v} rep ${rep + 1}/${ctx.reps}`);
      const m = await measure(ctx, v, n);
      ctx.log(
        `S8 N=${n} ${v} rep ${rep + 1}/${ctx.reps}: ${m.value.toFixed(1)} pairs/s p99 ${m.latency?.p99Ms} ms`,
      );
      runs[v].push(m);
    }
  }
  const baseline = runs.one;
  const repeated = baseline.map((m) => ({ ...m, repeated: true as const }));
  const redisNotes = (rs: Measurement[]) => [
    `Redis per message written to a device: ${pick(rs, 'redisCommandsPerMessage').toFixed(1)} commands, ${pick(rs, 'redisCpuUsPerMessage').toFixed(1)} µs CPU, ${pick(rs, 'redisBytesPerMessage').toFixed(0)} bytes; ${pick(rs, 'redisCommandsPerPair').toFixed(1)} commands per pair`,
    `fleetjobs CPU per pair (all nodes): ${pick(rs, 'serverCpuMsPerPair').toFixed(3)} ms vs ${median(baseline.map((r) => Number(r.extra.serverCpuMsPerPair))).toFixed(3)} ms on one node without Redis`,
  ];
  return [
    row(
      `S3 loop, N=${n}, on 3 nodes clustered over Redis (devices dealt out evenly)`,
      '1 node, no Redis, same run',
      [...baseline, ...runs.three],
      [
        `sessions per node: ${runs.three[0]?.extra.sessionsPerNode ?? '?'}; clean=false sessions, closed loop`,
        ...redisNotes(runs.three),
      ],
    ),
    row(
      `S3 loop, N=${n}, on 1 node with REDIS_URL (sessions and fan-out through Redis)`,
      '1 node, no Redis, same run',
      [...repeated, ...runs.oneRedis],
      redisNotes(runs.oneRedis),
    ),
  ];
}
