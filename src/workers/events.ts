/**
 * Events worker: gives committed events (job and execution events written by the write funnel and the
 * job services) their public sequence numbers, in commit order, for GET /events; and deletes events older than
 * the retention period. One instance sequences at a time (advisory lock): a batch is numbered and committed
 * before the next is numbered, so a consumer resuming after seq N never misses a row.
 */
import type { ServiceDeps } from '../service/deps.js';
import { deleteEventsBefore, sequenceEvents } from '../store/events.js';
import { tryWorkerLock, WORKER_LOCKS } from '../store/sweeps.js';
import { createLoop, yieldToEventLoop, type Worker } from './loop.js';

export interface EventsWorkerOptions {
  /** Time between passes: how long an event waits before GET /events can send it. */
  tickMs?: number;
  /** How long events are kept for consumers that reconnect with Last-Event-ID. */
  retentionMs?: number;
  batchSize?: number;
}

export const DEFAULT_EVENTS_RETENTION_MS = 7 * 24 * 3_600_000;

export function createEventsWorker(deps: ServiceDeps, options: EventsWorkerOptions = {}): Worker {
  const batchSize = options.batchSize ?? 10_000;
  const retentionMs = options.retentionMs ?? DEFAULT_EVENTS_RETENTION_MS;
  return createLoop({
    name: 'events',
    tickMs: options.tickMs ?? 250,
    log: deps.log,
    clock: deps.clock,
    async pass(now) {
      let total = 0;
      for (;;) {
        const n = await deps.db.transaction(async (tx) =>
          (await tryWorkerLock(tx, WORKER_LOCKS.events)) ? sequenceEvents(tx, batchSize) : 0,
        );
        total += n;
        if (n < batchSize) break;
        await yieldToEventLoop();
      }
      const cutoff = new Date(now.getTime() - retentionMs);
      while ((await deleteEventsBefore(deps.db, cutoff, batchSize)) === batchSize) await yieldToEventLoop();
      return total;
    },
  });
}
