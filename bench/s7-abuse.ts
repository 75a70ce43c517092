/**
 * S7: abuse, against fleetjobs (whole server) and against Mosquitto at 127.0.0.1:1883 under the same abuse:
 * 1. 50 clients flooding QoS 0 (1 KB) to 5 subscribers are killed (SIGKILL) mid-firehose;
 * 2. a QoS 1 subscriber to the firehose stops reading while 20 clients flood for 3 s;
 * 3. 500 devices with persistent sessions die at once and reconnect all together.
 * A probe device does a QoS 1 round trip through the broker (publish to its own topic) every 20 ms from start
 * to end. Reported: whether the broker is still up, the time for the 500 to be connected and subscribed again
 * (recovery), the probe's worst round trip, and the broker's peak RSS where we can read it (fleetjobs).
 * Correctness: a probe round trip that never completes counts as lost.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connectFleet, type Fleet, type FleetOptions } from './lib/loadgen.js';
import { startServer, type HostedServer } from './lib/servers.js';
import { createBenchSchema, type BenchSchema } from './lib/db.js';
import type { ProcessUsage } from './lib/metrics.js';
import {
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import { ROOT } from './s1-request-reply.js';

const MOSQUITTO = { host: '127.0.0.1', port: 1883 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function abuse(ctx: RunContext, variant: Variant): Promise<Measurement> {
  let s: BenchSchema | undefined;
  let server: HostedServer | undefined;
  if (variant === 'fleetjobs') {
    s = await createBenchSchema(ctx.pgUrl);
    server = await startServer('fleetjobs', { url: s.url, schema: s.schema });
  }
  const target = server ? { host: server.host, port: server.port } : MOSQUITTO;
  // Client ids unique to this run: Mosquitto is shared and keeps persistent sessions.
  const prefix = `s7${randomBytes(3).toString('hex')}-`;
  const fleet = (things: string[], more: Partial<FleetOptions>) =>
    connectFleet({
      ...target,
      thingNames: things,
      processes: 1,
      root: ROOT,
      clean: true,
      subscribe: 'none',
      connectConcurrency: 100,
      clientIdPrefix: prefix,
      ...more,
    });
  const open: Fleet[] = [];
  try {
    const small = ctx.smoke;
    const probe = await fleet(['probe'], { subscribe: 'probe' });
    open.push(probe);
    await server?.child.call('meterStart');
    const totalMs = small ? 8_000 : 20_000;
    const probing = probe.run({ workload: 'probe', durationMs: totalMs, replyTimeoutMs: 30_000 });

    // 1. firehose clients killed mid-stream.
    const subscribers = await fleet(names('sub', 5), { subscribe: 'firehose' });
    open.push(subscribers);
    const hose = await fleet(names('hose', small ? 10 : 50), {});
    void hose.run({ workload: 'firehose', durationMs: 10_000, replyTimeoutMs: 1_000 }).catch(() => {});
    await sleep(2_000);
    await Promise.all(hose.children.map((c) => c.kill()));

    // 2. a subscriber that stops reading while the firehose runs.
    const slow = await fleet(['slow'], { subscribe: 'firehose' });
    await Promise.all(slow.children.map((c) => c.call('pauseReading')));
    const hose2 = await fleet(names('hose2', small ? 5 : 20), {});
    open.push(hose2);
    await hose2.run({ workload: 'firehose', durationMs: small ? 1_000 : 3_000, replyTimeoutMs: 1_000 });
    await Promise.all(slow.children.map((c) => c.kill()));

    // 3. 500 persistent sessions die together and reconnect together.
    const storm = names('storm', small ? 100 : 500);
    const first = await fleet(storm, { clean: false, subscribe: 'probe' });
    await Promise.all(first.children.map((c) => c.kill()));
    // The reconnect time below includes starting a load-generator process; this is that part alone.
    const s0 = performance.now();
    const empty = await fleet([], {});
    const spawnMs = performance.now() - s0;
    await empty.close();
    const t0 = performance.now();
    const again = await fleet(storm, { clean: false, subscribe: 'probe', connectConcurrency: storm.length });
    const recoveryMs = performance.now() - t0;
    open.push(again);
    const served = await again.run({ workload: 'probe', durationMs: 1_000, replyTimeoutMs: 60_000 });

    const p = await probing;
    const usage = server ? [await server.child.call<ProcessUsage>('meterStop')] : [];
    const alive = server
      ? await Promise.race([server.child.exited.then(() => false), sleep(10).then(() => true)])
      : p.counters.lost === 0;
    return {
      variant,
      value: recoveryMs,
      latency: p.latency,
      usage,
      counters: {
        lost: p.counters.lost + served.counters.lost,
        duplicated: p.counters.duplicated,
        doubleClaimed: 0,
      },
      extra: {
        brokerUp: alive ? 'yes' : 'no',
        reconnected: again.size,
        loadgenStartMs: Math.round(spawnMs),
        probeRoundTrips: p.counters.replies,
        probeMaxMs: p.latency.maxMs,
        stormProbeP99Ms: served.latency.p99Ms,
      },
    };
  } finally {
    for (const f of open.reverse()) await f.close();
    if (variant === 'baseline') {
      // Leave no persistent sessions behind in the shared Mosquitto.
      const wipe = await fleet(names('storm', ctx.smoke ? 100 : 500), { clean: true });
      await wipe.close();
    }
    await server?.child.exit();
    await s?.drop();
  }
}

export async function runS7(ctx: RunContext): Promise<ResultRow[]> {
  const runs: Measurement[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    for (const v of (rep % 2 === 0 ? ['baseline', 'fleetjobs'] : ['fleetjobs', 'baseline']) as Variant[]) {
      ctx.log(`S7 rep ${rep + 1}/${ctx.reps} ${v}`);
      const m = await abuse(ctx, v);
      ctx.log(
        `S7 ${v}: up ${m.extra.brokerUp}, reconnect ${m.value.toFixed(0)} ms (of which load-generator start ${m.extra.loadgenStartMs} ms), probe max ${m.latency?.maxMs} ms`,
      );
      runs.push(m);
    }
  }
  const up = runs.every((r) => r.extra.brokerUp === 'yes');
  return [
    {
      id: 'S7',
      title: 'abuse: firehose killed, stalled subscriber, reconnect storm',
      unit: 'ms to reconnect',
      lowerIsBetter: true,
      baselineName: 'Mosquitto 2.0 (127.0.0.1:1883), same abuse',
      runs,
      ratio: ratioOf(runs, true),
      target: 'no crash; recovery time reported',
      met: up,
      notes: [
        `probe round trip p99 during the abuse: fleetjobs ${medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms)} ms, Mosquitto ${medianOf(runs, 'baseline', (m) => m.latency?.p99Ms)} ms (Mosquitto here runs without set_tcp_nodelay)`,
      ],
    },
  ];
}
