/**
 * S5: 19,000 idle persistent sessions (clean: false, subscribed to notify-next at QoS 1) held while 100 active
 * devices work in open loop at a stated rate (BENCH_S5_RATE pairs/s, default 100; see lib/paced.ts): on
 * fleetjobs S3's start-next -> update pair, on the baseline (plain Aedes with the ack-first echo) two `get`s.
 * Two rows from the same runs: the server's peak RSS (ratio baseline ÷ fleetjobs) and the active devices' p99
 * per pair from its scheduled start. One server process holds ~19.9k sockets here, so 19,000 + 100 is near
 * the ceiling.
 */
import { asPaced, envNumber, pacedRow } from './lib/paced.js';
import { startServer } from './lib/servers.js';
import {
  median,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import { connectEchoFleet } from './s1-request-reply.js';
import { holdIdleSessions, jobsFor, measureJobs, runPacedEcho } from './s3-end-to-end.js';

const ACTIVE = 100;

/** Both rows' views of one run: the server's peak RSS, and the p99 per pair (same counters, totalled once). */
interface Run {
  memory: Measurement;
  paced: Measurement;
}

async function baseline(ctx: RunContext, sessions: number, ratePerSec: number): Promise<Run> {
  const server = await startServer('aedes-echo');
  try {
    const idle = await holdIdleSessions(undefined, server, sessions);
    try {
      const fleet = await connectEchoFleet(server, ACTIVE);
      try {
        const { r, usage, counters } = await runPacedEcho(ctx, server, fleet, ratePerSec);
        const memory: Measurement = {
          variant: 'baseline',
          value: usage.rssMb,
          latency: r.latency,
          usage: [usage, ...r.usage],
          counters,
          extra: { idleSessions: idle.size },
        };
        return { memory, paced: { ...asPaced(memory, r.schedule), repeated: true } };
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
  const rate = ctx.smoke ? 50 : envNumber('BENCH_S5_RATE', 100);
  const measure = async (variant: Variant): Promise<Run> => {
    if (variant === 'baseline') return baseline(ctx, sessions, rate);
    const { m, run } = await measureJobs(ctx, {
      n: ACTIVE,
      jobs: jobsFor(ctx, ACTIVE),
      idleSessions: sessions,
      ratePerSec: rate,
    });
    const memory = { ...m, value: run.server.rssMb, extra: { ...m.extra, activePairsPerSec: m.value } };
    return { memory, paced: { ...asPaced(m, run.fleet.schedule), repeated: true } };
  };
  const runs: Run[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of (rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline']) as Variant[]) {
      ctx.log(`S5 ${sessions} sessions rep ${rep + 1}/${ctx.reps} ${v}`);
      const r = await measure(v);
      ctx.log(`S5 ${v}: server RSS ${r.memory.value} MB, active p99 per pair ${r.paced.value} ms`);
      runs.push(r);
    }
  }
  const memory = runs.map((r) => r.memory);
  const ratio = ratioOf(memory, true);
  const rss = median(memory.filter((r) => r.variant === 'fleetjobs').map((r) => r.value));
  const baseRss = median(memory.filter((r) => r.variant === 'baseline').map((r) => r.value));
  const title = `${sessions.toLocaleString('en-US')} persistent sessions + ${ACTIVE} active devices at ${rate} pairs/s`;
  return [
    {
      id: 'S5',
      title: `${title}: server peak RSS`,
      unit: 'MB',
      lowerIsBetter: true,
      baselineName: 'plain Aedes, same sessions',
      runs: memory,
      ratio,
      target: 'memory ≤ 1.5 × baseline',
      met: rss <= 1.5 * baseRss,
      notes: [`median fleetjobs RSS ${rss} MB, baseline ${baseRss} MB`],
    },
    pacedRow({
      id: 'S5',
      title: `${title}: active p99, open loop`,
      baselineName: 'plain Aedes echo, same sessions and schedule',
      runs: runs.map((r) => r.paced),
      targetMs: 10,
    }),
  ];
}
