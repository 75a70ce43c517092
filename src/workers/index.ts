import type { ServiceDeps } from '../service/deps.js';
import { createEventsWorker } from './events.js';
import { createRetryWorker } from './retries.js';
import { createRolloutWorker } from './rollout.js';
import { createScheduleWorker } from './schedules.js';
import { createTimeoutWorker } from './timeouts.js';
import type { Worker } from './loop.js';

export interface WorkersOptions {
  /** Time between passes of the timeout, retry and rollout workers; timers fire within about one tick. */
  tickMs?: number;
  /** Time between passes of the events sequencer (GET /events latency). */
  eventsTickMs?: number;
  /** How long GET /events keeps events. */
  eventsRetentionMs?: number;
  /** Executions timed out per transaction. */
  timeoutBatchSize?: number;
  /** false: no timers run; tests call runOnce(now) themselves. */
  autoStart?: boolean;
}

/** Default tick: a timer fires at most about a second after its deadline ([protocol §4]: within 5 s). */
export const DEFAULT_WORKER_TICK_MS = 1000;

export interface Workers {
  timeouts: Worker;
  retries: Worker;
  rollout: Worker;
  events: Worker;
  schedules: Worker;
  start(): void;
  close(): Promise<void>;
  /** One pass of every worker at `now`, in dependency order (schedules, rollout, timeouts, retries, events). */
  runOnce(now?: Date): Promise<number>;
}

export function createWorkers(deps: ServiceDeps, options: WorkersOptions = {}): Workers {
  const tickMs = options.tickMs ?? DEFAULT_WORKER_TICK_MS;
  const timeouts = createTimeoutWorker(deps, { tickMs, batchSize: options.timeoutBatchSize });
  const retries = createRetryWorker(deps, { tickMs });
  const rollout = createRolloutWorker(deps, { tickMs });
  const events = createEventsWorker(deps, {
    tickMs: options.eventsTickMs,
    retentionMs: options.eventsRetentionMs,
  });
  const schedules = createScheduleWorker(deps, { tickMs });
  const all = [schedules, rollout, timeouts, retries, events];
  return {
    timeouts,
    retries,
    rollout,
    events,
    schedules,
    start() {
      if (options.autoStart === false) return;
      for (const w of all) w.start();
    },
    async close() {
      await Promise.all(all.map((w) => w.close()));
    },
    async runOnce(now) {
      let n = 0;
      for (const w of all) n += await w.runOnce(now);
      return n;
    },
  };
}
