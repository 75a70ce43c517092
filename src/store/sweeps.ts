import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import type { ExecutionChange } from './rows.js';
import type { ExecutionStatus } from '../protocol/states.js';

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
  const rows = await tx.query<{ locked: boolean }>(
    `SELECT pg_try_advisory_xact_lock(hashtext('fleetjobs:' || current_schema()), $1::int) AS locked`,
    [key],
  );
  return rows[0]?.locked === true;
}

export interface ExecutionKey {
  jobId: string;
  thingName: string;
  executionNumber: number;
}

/** An overdue execution as selected: its status and row version (ctid) at that moment. */
export interface OverdueExecution extends ExecutionKey {
  status: ExecutionStatus;
  ctid: string;
}

/** The earliest overdue pending executions (timeout_at passed), at most limit, through the timeout index. */
export async function selectOverdueExecutions(
  tx: Queryable,
  now: Date,
  limit: number,
): Promise<OverdueExecution[]> {
  return tx.query<OverdueExecution>(
    `SELECT job_id, thing_name, execution_number, status, ctid::text AS ctid FROM job_executions
     WHERE timeout_at <= $1 AND status IN (${PENDING_SQL})
     ORDER BY timeout_at LIMIT $2`,
    [now, limit],
  );
}

/**
 * [protocol §4] QUEUED / IN_PROGRESS -> TIMED_OUT for the selected overdue executions, in one statement; version + 1.
 * Rows are addressed by the row version selected (a TID scan, whatever the batch size): a row that a device
 * changed since has a new version and is left alone, and so is one whose guard (status, deadline) no longer
 * holds. The things must be locked (lockThings) so that nothing changes a row between this and the
 * notifications; an unchanged row version also means the status selected is the previous status.
 */
export async function timeOutExecutions(
  tx: Queryable,
  overdue: readonly OverdueExecution[],
  now: Date,
): Promise<ExecutionChange[]> {
  if (overdue.length === 0) return [];
  const rows = await tx.query<{ jobId: string; thingName: string; executionNumber: number }>(
    `UPDATE job_executions e
     SET status = 'TIMED_OUT', version_number = e.version_number + 1, last_updated_at = $2
     WHERE e.ctid = ANY($1::tid[]) AND e.status IN (${PENDING_SQL}) AND e.timeout_at <= $2
     RETURNING e.job_id, e.thing_name, e.execution_number`,
    [overdue.map((o) => o.ctid), now],
  );
  const key = (k: ExecutionKey) => `${k.jobId}\u0000${k.thingName}\u0000${k.executionNumber}`;
  const previous = new Map(overdue.map((o) => [key(o), o.status]));
  return rows.map((r) => ({
    jobId: r.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'TIMED_OUT',
    // Every updated row matched a selected row version, so its selected status is in the map.
    previousStatus: previous.get(key(r)) as ExecutionStatus,
  }));
}
