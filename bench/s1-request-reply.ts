/**
 * S1: MQTT request -> reply through fleetjobs' broker and device router with a handler that answers at once
 * (the store returns no rows without touching a database), against plain Aedes with an ack-first in-process
 * echo. Closed loop: each device sends its next `get` when the previous reply arrived. Devices subscribe to
 * their reply topics, as AWS SDK devices do, so a reply delivered twice shows up as a duplicate.
 */
import { connectFleet } from './lib/loadgen.js';
import { startServer } from './lib/servers.js';
import { thingNames } from './lib/db.js';
import type { ServerKind } from './lib/server-host.js';
import {
  interleave,
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import type { ProcessUsage } from './lib/metrics.js';

export const ROOT = '$aws/things/{thingName}/jobs';

/** n devices that only send `get` requests and take their replies (a second process from 1,000 on). */
export function connectEchoFleet(server: { host: string; port: number }, n: number) {
  return connectFleet({
    host: server.host,
    port: server.port,
    thingNames: thingNames(n),
    processes: n >= 1000 ? 2 : 1,
    root: ROOT,
    clean: true,
    subscribe: 'replies',
    connectConcurrency: 100,
  });
}

export async function measureEcho(
  ctx: RunContext,
  variant: Variant,
  kind: ServerKind,
  n: number,
): Promise<Measurement> {
  const server = await startServer(kind);
  try {
    const fleet = await connectEchoFleet(server, n);
    try {
      await server.child.call('meterStart');
      const r = await fleet.run({ workload: 'echo', durationMs: ctx.durationMs, replyTimeoutMs: 60_000 });
      const serverUsage = await server.child.call<ProcessUsage>('meterStop');
      return {
        variant,
        value: r.counters.replies / (r.elapsedMs / 1000),
        latency: r.latency,
        usage: [serverUsage, ...r.usage],
        counters: { lost: r.counters.lost, duplicated: r.counters.duplicated, doubleClaimed: 0 },
        extra: { devices: fleet.size, rejected: r.counters.rejected, lateReplies: r.counters.late },
      };
    } finally {
      await fleet.close();
    }
  } finally {
    await server.child.exit();
  }
}

export async function runS1(ctx: RunContext): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const n of ctx.smoke ? [100] : [100, 1000]) {
    const runs = await interleave(ctx, `S1 N=${n}`, {
      baseline: () => measureEcho(ctx, 'baseline', 'aedes-echo', n),
      fleetjobs: () => measureEcho(ctx, 'fleetjobs', 'fleetjobs-router', n),
    });
    const ratio = ratioOf(runs);
    rows.push({
      id: 'S1',
      title: `request→reply, N=${n}`,
      unit: 'rt/s',
      lowerIsBetter: false,
      baselineName: 'Aedes ack-first echo',
      runs,
      ratio,
      target: '≥ 0.7 × baseline rt/s',
      met: ratio === undefined ? false : ratio.median >= 0.7,
      notes: [`median fleetjobs p99 ${medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms)} ms`],
    });
  }
  return rows;
}
