import type { Queryable } from './db.js';
import { FANOUT_THRESHOLD } from './funnel.js';
import { EVENTS_ROOT } from '../protocol/topics.js';

/** Advisory lock keys, one per sweep, so that one instance at a time runs each sweep. */
export const WORKER_LOCKS = {
  timeouts: 1,
  retries: 2,
  rollout: 3,
  events: 4,
} as const;

/**
 * Takes a sweep's advisory lock for the rest of the transaction, or returns false at once if another
 * instance holds it. Advisory locks are database-wide: the key includes the schema, so deployments (and test
 * files) in other schemas of the same database never hold each other's sweeps. Device transactions never take
 * these locks, so a sweep waiting for thing locks while holding one cannot deadlock with them.
 */
export async function tryWorkerLock(tx: Queryable, key: number): Promise<boolean> {
  const rows = await tx.query<{ locked: boolean }>(`SELECT ${TRY_WORKER_LOCK_SQL} AS locked`, [key]);
  return rows[0]?.locked === true;
}

/** The sweep lock of the key in parameter $1, for the rest of the transaction (tryWorkerLock). */
const TRY_WORKER_LOCK_SQL = `pg_try_advisory_xact_lock(hashtext('fleetjobs:' || current_schema()), $1::int)`;

/**
 * [protocol §4] One timeout sweep batch, in one statement that commits on its own: under the timeouts sweep lock,
 * QUEUED / IN_PROGRESS -> TIMED_OUT (version + 1) for the earliest overdue executions, at most limit, with the
 * write funnel's four steps (fj_time_out_overdue, migration 0007: select through the timeout index, thing locks
 * in name order, an UPDATE guarded by row version, status and deadline, then fj_after_change). Returns how many
 * it selected and timed out, or null when another instance holds the sweep.
 */
export async function timeOutOverdueExecutions(
  db: Queryable,
  now: Date,
  limit: number,
): Promise<{ taken: number; changed: number } | null> {
  const rows = await db.query<{ result: [number, number] | null }>(
    `SELECT CASE WHEN ${TRY_WORKER_LOCK_SQL} THEN fj_time_out_overdue($2, $3, $4, $5) END AS result`,
    [WORKER_LOCKS.timeouts, now, EVENTS_ROOT, FANOUT_THRESHOLD, limit],
  );
  const result = rows[0]?.result;
  return result == null ? null : { taken: result[0], changed: result[1] };
}
