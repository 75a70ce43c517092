/**
 * Schedule worker (recurring jobs): each pass takes the ENABLED schedules whose next tick is due and creates one
 * job per schedule from its template, for the latest tick at or before now (a schedule that missed ticks while
 * no instance ran gets one job, not one per missed tick), then moves next_run_at to the next tick, in the
 * job's transaction. The move is guarded by the next_run_at read (FOR UPDATE SKIP LOCKED) and the job id is
 * derived from the tick, so any number of instances create each tick once; state lives in the database, so a
 * restart picks up where the last pass left.
 */
import type { ServiceDeps } from '../service/deps.js';
import { runScheduleTick } from '../service/job-schedules.js';
import { tenantDb } from '../store/db.js';
import { selectDueSchedules } from '../store/schedules.js';
import { createLoop, yieldToEventLoop, type Worker } from './loop.js';

export interface ScheduleWorkerOptions {
  tickMs?: number;
  /** Schedules handled per pass at most; the rest wait for the next pass. */
  batchSize?: number;
}

export function createScheduleWorker(deps: ServiceDeps, options: ScheduleWorkerOptions = {}): Worker {
  const batchSize = options.batchSize ?? 100;
  return createLoop({
    name: 'schedules',
    tickMs: options.tickMs ?? 1000,
    log: deps.log,
    clock: deps.clock,
    pass: async (now) => {
      let created = 0;
      for (const s of await selectDueSchedules(deps.db, now, batchSize)) {
        // As the schedule's tenant: its template and targets are looked up among that tenant's only.
        const tenant = s.tenantId;
        created += await runScheduleTick({ ...deps, db: tenantDb(deps.db, () => tenant) }, s, now);
        await yieldToEventLoop();
      }
      if (created > 0) deps.outboxWritten();
      return created;
    },
  });
}
