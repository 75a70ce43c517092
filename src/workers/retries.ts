/**
 * Retry worker (jobExecutionsRetryConfig with the retryDelaySeconds extension): when a delayed retry of a
 * FAILED / TIMED_OUT execution is due, creates it as a new QUEUED execution (next executionNumber,
 * retryAttempt + 1, version 1) and notifies the device. Retries without a delay are created by
 * the write funnel (src/store/funnel.ts) in the transaction of the failure; this worker only handles the delayed ones. The
 * retry row is deleted in the transaction that creates the execution, so each retry happens once.
 */
import type { ServiceDeps } from '../service/deps.js';
import { writeExecutions } from '../store/funnel.js';
import { completeJobsIfDone } from '../store/notifications.js';
import { deleteDueRetries, insertRetryExecutions, selectDueRetries } from '../store/retries.js';
import { tryWorkerLock, WORKER_LOCKS } from '../store/sweeps.js';
import { createLoop, drainBatches, type Worker } from './loop.js';

export interface RetryWorkerOptions {
  tickMs?: number;
  batchSize?: number;
}

export function createRetryWorker(deps: ServiceDeps, options: RetryWorkerOptions = {}): Worker {
  const batchSize = options.batchSize ?? 1_000;

  const batch = (now: Date) =>
    deps.db.transaction(async (tx) => {
      if (!(await tryWorkerLock(tx, WORKER_LOCKS.retries))) return null;
      const selected = await selectDueRetries(tx, now, batchSize);
      if (selected.length === 0) return { taken: 0, changed: 0 };
      const { changes, due } = await writeExecutions(tx, now, {
        lock: [...new Set(selected.map((d) => d.thingName))],
        change: async ({ thingNames }) => {
          const locked = new Set(thingNames);
          const due = await deleteDueRetries(tx, selected, now);
          const changes = await insertRetryExecutions(
            tx,
            due.filter((d) => locked.has(d.thingName)),
            now,
          );
          return { changes, due };
        },
      });
      // A retry that could not be created (job canceled, thing deleted) may have been all a job waited for.
      await completeJobsIfDone(tx, [...new Set(due.map((d) => d.jobId))], now);
      return { taken: selected.length, changed: changes.length };
    });

  return createLoop({
    name: 'retries',
    tickMs: options.tickMs ?? 1000,
    log: deps.log,
    clock: deps.clock,
    pass: (now) => drainBatches(() => batch(now), batchSize, deps.outboxWritten),
  });
}
