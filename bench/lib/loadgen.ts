import { performance } from 'node:perf_hooks';
import { spawnChild, type Child } from './child.js';
import { mergeHistograms, summarize, type LatencySummary } from './hist.js';
import type { ProcessUsage } from './metrics.js';
import type { ConnectArgs, WorkloadArgs, WorkloadResult } from './device-worker.js';
import { emptyCounters, type Counters } from './metrics.js';

export interface FleetOptions extends Omit<ConnectArgs, 'thingNames' | 'localAddress'> {
  thingNames: string[];
  /** Load-generator processes; devices are dealt out evenly, each process from its own 127.0.0.x. */
  processes: number;
  /** Several servers (S8's cluster nodes): process i connects its devices to servers[i % length]. */
  servers?: { host: string; port: number }[];
}

export interface FleetRun {
  latency: LatencySummary;
  counters: Counters;
  elapsedMs: number;
  usage: ProcessUsage[];
  rejectCodes: Record<string, number>;
  /** Open loop only. */
  schedule?: Schedule;
}

/** An open-loop run against its stated rate. */
export interface Schedule {
  ratePerSec: number;
  scheduled: number;
  /** Pairs scheduled within the run and ended, per second of the run. */
  achievedPerSec: number;
  skipped: number;
  /** How long after the end of the run the last reply came: the backlog a slow server left. */
  overrunMs: number;
  startLagP99Ms: number;
  startLagMaxMs: number;
  /** Per request rather than per pair (start-next from its scheduled start). */
  requests: LatencySummary;
  /**
   * The stated load was offered: every scheduled pair started and ended, at ≥ 95 % of the stated rate. A
   * server that falls behind delays starts, which the latency from the scheduled start already counts.
   */
  kept: boolean;
}

export interface RunArgs extends Omit<WorkloadArgs, 'startAt' | 'pairIntervalMs'> {
  /** Open loop (echo, jobs): pairs started per second by the whole fleet, spread evenly over its devices. */
  ratePerSec?: number;
}

export interface Fleet {
  readonly size: number;
  run(args: RunArgs): Promise<FleetRun>;
  children: readonly Child[];
  close(): Promise<void>;
}

const epochMs = () => performance.timeOrigin + performance.now();

function scheduleOf(
  results: readonly WorkloadResult[],
  ratePerSec: number,
  durationMs: number,
  elapsedMs: number,
): Schedule {
  const parts = results.map((r) => r.schedule).filter((s) => s !== undefined);
  const sum = (k: 'scheduled' | 'done' | 'skipped') => parts.reduce((a, s) => a + s[k], 0);
  const lag = summarize(mergeHistograms(parts.map((s) => s.startLagHistogram)));
  const achievedPerSec = sum('done') / (durationMs / 1000);
  return {
    ratePerSec,
    scheduled: sum('scheduled'),
    achievedPerSec,
    skipped: sum('skipped'),
    overrunMs: Math.max(0, elapsedMs - durationMs),
    startLagP99Ms: lag.p99Ms,
    startLagMaxMs: lag.maxMs,
    requests: summarize(mergeHistograms(parts.map((s) => s.requestHistogram))),
    kept: sum('done') === sum('scheduled') && achievedPerSec >= 0.95 * ratePerSec,
  };
}

/** Connects a fleet of MQTT devices spread over several load-generator processes. */
export async function connectFleet(options: FleetOptions): Promise<Fleet> {
  const n = Math.max(1, Math.min(options.processes, options.thingNames.length));
  const children = await Promise.all(
    Array.from({ length: n }, () => spawnChild(new URL('./device-worker.ts', import.meta.url))),
  );
  try {
    const counts = await Promise.all(
      children.map((c, i) =>
        c.call<{ connected: number }>('connect', {
          ...options,
          ...(options.servers === undefined ? {} : options.servers[i % options.servers.length]),
          thingNames: options.thingNames.filter((_, k) => k % n === i),
          localAddress: `127.0.0.${2 + i}`,
        } satisfies ConnectArgs),
      ),
    );
    const size = counts.reduce((a, c) => a + c.connected, 0);
    return {
      size,
      children,
      async run({ ratePerSec, ...args }) {
        // Everyone starts at the same instant, a little ahead so that every child has the message.
        const startAt = epochMs() + 300;
        const workload: WorkloadArgs = {
          ...args,
          startAt,
          ...(ratePerSec === undefined ? {} : { pairIntervalMs: (size / ratePerSec) * 1000 }),
        };
        const results = await Promise.all(children.map((c) => c.call<WorkloadResult>('run', workload)));
        const counters = results.reduce<Counters>((acc, r) => {
          for (const k of Object.keys(acc) as (keyof Counters)[]) acc[k] += r.counters[k];
          return acc;
        }, emptyCounters());
        const rejectCodes: Record<string, number> = {};
        for (const r of results)
          for (const [k, v] of Object.entries(r.rejectCodes)) rejectCodes[k] = (rejectCodes[k] ?? 0) + v;
        const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
        return {
          latency: summarize(mergeHistograms(results.map((r) => r.histogram))),
          counters,
          elapsedMs,
          usage: results.map((r) => r.usage),
          rejectCodes,
          ...(ratePerSec === undefined
            ? {}
            : { schedule: scheduleOf(results, ratePerSec, args.durationMs, elapsedMs) }),
        };
      },
      async close() {
        await Promise.all(children.map((c) => c.call('close').catch(() => {})));
        await Promise.all(children.map((c) => c.exit()));
      },
    };
  } catch (err) {
    await Promise.all(children.map((c) => c.exit()));
    throw err;
  }
}
