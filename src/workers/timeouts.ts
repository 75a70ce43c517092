/**
 * Timeout worker ([protocol §4] timers): moves QUEUED executions past their queued deadline
 * (timeoutConfig.queuedTimeoutInMinutes) and IN_PROGRESS executions past their in-progress or step deadline to
 * TIMED_OUT, version + 1, every tick. Each batch is one statement (timeOutOverdueExecutions): things locked in name
 * order, one guarded UPDATE, then the write funnel's after-change step (notify / notify-next, timed_out events,
 * retries, job rollup). Batches are bounded so a device whose thing is in a batch waits at most one batch; one
 * instance sweeps at a time (advisory lock), and the guard makes a second sweep of the same row a no-op anyway.
 */
import type { ServiceDeps } from '../service/deps.js';
import { timeOutOverdueExecutions } from '../store/sweeps.js';
import { createLoop, drainBatches, type Worker } from './loop.js';

export interface TimeoutWorkerOptions {
  /** Time between sweeps; timers fire within one tick of their deadline. */
  tickMs?: number;
  /** Executions timed out per transaction. */
  batchSize?: number;
}

export const DEFAULT_TIMEOUT_BATCH = 5_000;

export function createTimeoutWorker(deps: ServiceDeps, options: TimeoutWorkerOptions = {}): Worker {
  const batchSize = options.batchSize ?? DEFAULT_TIMEOUT_BATCH;

  /** One batch; null when another instance holds the sweep. */
  const batch = (now: Date) => timeOutOverdueExecutions(deps.db, now, batchSize);

  return createLoop({
    name: 'timeouts',
    tickMs: options.tickMs ?? 1000,
    log: deps.log,
    clock: deps.clock,
    pass: (now) => drainBatches(() => batch(now), batchSize, deps.outboxWritten),
  });
}
