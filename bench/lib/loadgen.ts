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
}

export interface FleetRun {
  latency: LatencySummary;
  counters: Counters;
  elapsedMs: number;
  usage: ProcessUsage[];
  rejectCodes: Record<string, number>;
}

export interface Fleet {
  readonly size: number;
  run(args: Omit<WorkloadArgs, 'startAt'>): Promise<FleetRun>;
  children: readonly Child[];
  close(): Promise<void>;
}

const epochMs = () => performance.timeOrigin + performance.now();

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
          thingNames: options.thingNames.filter((_, k) => k % n === i),
          localAddress: `127.0.0.${2 + i}`,
        } satisfies ConnectArgs),
      ),
    );
    const size = counts.reduce((a, c) => a + c.connected, 0);
    return {
      size,
      children,
      async run(args) {
        // Everyone starts at the same instant, a little ahead so that every child has the message.
        const startAt = epochMs() + 300;
        const results = await Promise.all(
          children.map((c) => c.call<WorkloadResult>('run', { ...args, startAt } satisfies WorkloadArgs)),
        );
        const counters = results.reduce<Counters>((acc, r) => {
          for (const k of Object.keys(acc) as (keyof Counters)[]) acc[k] += r.counters[k];
          return acc;
        }, emptyCounters());
        const rejectCodes: Record<string, number> = {};
        for (const r of results)
          for (const [k, v] of Object.entries(r.rejectCodes)) rejectCodes[k] = (rejectCodes[k] ?? 0) + v;
        return {
          latency: summarize(mergeHistograms(results.map((r) => r.histogram))),
          counters,
          elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
          usage: results.map((r) => r.usage),
          rejectCodes,
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
