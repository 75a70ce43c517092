/**
 * S5: 19,000 idle persistent sessions (clean: false, subscribed to notify-next at QoS 1) held while 100 active
 * devices work: on fleetjobs they run S3's start-next -> update loop, on the baseline (plain Aedes with the
 * ack-first echo) S1's request -> reply. Compared: the server's peak RSS (ratio baseline ÷ fleetjobs) and the
 * active devices' p99. One server process holds ~19.9k sockets here, so 19,000 + 100 is near the ceiling.
 */
import { connectFleet } from './lib/loadgen.js';
import { startServer } from './lib/servers.js';
import { thingNames } from './lib/db.js';
import type { ProcessUsage } from './lib/metrics.js';
import {
  median,
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import { ROOT } from './s1-request-reply.js';
import { holdIdleSessions, jobsFor, measureJobs } from './s3-end-to-end.js';

const ACTIVE = 100;

async function baseline(ctx: RunContext, sessions: number): Promise<Measurement> {
  const server = await startServer('aedes-echo');
  try {
    const idle = await holdIdleSessions(undefined, server, sessions);
    try {
      const fleet = await connectFleet({
        host: server.host,
        port: server.port,
        thingNames: thingNames(ACTIVE),
        processes: 1,
        root: ROOT,
        clean: true,
        subscribe: 'replies',
        connectConcurrency: 100,
      });
      try {
        await server.child.call('meterStart');
        const r = await fleet.run({ workload: 'echo', durationMs: ctx.durationMs, replyTimeoutMs: 60_000 });
        const usage = await server.child.call<ProcessUsage>('meterStop');
        return {
          variant: 'baseline',
          value: usage.rssMb,
          latency: r.latency,
          usage: [usage, ...r.usage],
          counters: { lost: r.counters.lost, duplicated: r.counters.duplicated, doubleClaimed: 0 },
          extra: { idleSessions: idle.size, activeRtPerSec: r.counters.replies / (r.elapsedMs / 1000) },
        };
      } finally {
        await fleet.close();
      }
    } finally {
      await idle.close();
    }
  } finally {
    await server.child.exit();
  }
}

export async function runS5(ctx: RunContext): Promise<ResultRow[]> {
  const sessions = ctx.smoke ? 500 : 19_000;
  const measure = async (variant: Variant): Promise<Measurement> => {
    if (variant === 'baseline') return baseline(ctx, sessions);
    const { m, run } = await measureJobs(ctx, {
      n: ACTIVE,
      jobs: jobsFor(ctx, ACTIVE),
      idleSessions: sessions,
    });
    return { ...m, value: run.server.rssMb, extra: { ...m.extra, activePairsPerSec: m.value } };
  };
  const runs: Measurement[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of (rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline']) as Variant[]) {
      ctx.log(`S5 ${sessions} sessions rep ${rep + 1}/${ctx.reps} ${v}`);
      const m = await measure(v);
      ctx.log(`S5 ${v}: server RSS ${m.value} MB, active p99 ${m.latency?.p99Ms} ms`);
      runs.push(m);
    }
  }
  const ratio = ratioOf(runs, true);
  const p99 = medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms);
  const rss = median(runs.filter((r) => r.variant === 'fleetjobs').map((r) => r.value));
  const baseRss = median(runs.filter((r) => r.variant === 'baseline').map((r) => r.value));
  return [
    {
      id: 'S5',
      title: `${sessions.toLocaleString('en-US')} persistent sessions + ${ACTIVE} active devices: server peak RSS`,
      unit: 'MB',
      lowerIsBetter: true,
      baselineName: 'plain Aedes, same sessions',
      runs,
      ratio,
      target: 'memory ≤ 1.5 × baseline; active p99 ≤ 10 ms',
      met: rss <= 1.5 * baseRss && p99 <= 10,
      notes: [`active p99 ${p99} ms (fleetjobs: start-next/update on PostgreSQL; baseline: echo)`],
    },
  ];
}
