/**
 * Timeout worker ([protocol §4] timers): moves QUEUED executions past their queued deadline
 * (timeoutConfig.queuedTimeoutInMinutes) and IN_PROGRESS executions past their in-progress or step deadline to
 * TIMED_OUT, version + 1, every tick. Each batch is one transaction: things locked in name order, one guarded
 * UPDATE, then the write funnel's after-change step (notify / notify-next, timed_out events, retries, job rollup). Batches are
 * bounded so a device whose thing is in a batch waits at most one batch; one instance sweeps at a time
 * (advisory lock), and the guard makes a second sweep of the same row a no-op anyway.
 */
import type { ServiceDeps } from '../service/deps.js';
import { writeExecutions } from '../store/funnel.js';
import { selectOverdueExecutions, timeOutExecutions, tryWorkerLock, WORKER_LOCKS } from '../store/sweeps.js';
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
  const batch = (now: Date) =>
    deps.db.transaction(async (tx) => {
      if (!(await tryWorkerLock(tx, WORKER_LOCKS.timeouts))) return null;
      const due = await selectOverdueExecutions(tx, now, batchSize);
      if (due.length === 0) return { taken: 0, changed: 0 };
      const { changes } = await writeExecutions(tx, now, {
        lock: [...new Set(due.map((d) => d.thingName))].sort(),
        change: async () => ({ changes: await timeOutExecutions(tx, due, now) }),
      });
      return { taken: due.length, changed: changes.length };
    });

  return createLoop({
    name: 'timeouts',
    tickMs: options.tickMs ?? 1000,
    log: deps.log,
    clock: deps.clock,
    pass: (now) => drainBatches(() => batch(now), batchSize, deps.outboxWritten),
  });
}
