import type { Queryable } from './db.js';
import type { ExecutionChange } from './notifications.js';
import type { ExecutionStatus } from '../protocol/states.js';

/** Advisory lock keys, one per sweep, so that one instance at a time runs each sweep. */
export const WORKER_LOCKS = {
  timeouts: 7_346_201_601,
  retries: 7_346_201_602,
  rollout: 7_346_201_603,
  events: 7_346_201_604,
} as const;

/**
 * Takes a sweep's advisory lock for the rest of the transaction, or returns false at once if another
 * instance holds it. Device transactions never take these locks, so a sweep waiting for thing locks while
 * holding one cannot deadlock with them.
 */
export async function tryWorkerLock(tx: Queryable, key: number): Promise<boolean> {
  const rows = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1::bigint) AS locked`, [
    key,
  ]);
  return rows[0]?.locked === true;
}

export interface ExecutionKey {
  jobId: string;
  thingName: string;
  executionNumber: number;
}

/** The earliest overdue pending executions (timeout_at passed), at most limit, through the timeout index. */
export async function selectOverdueExecutions(
  tx: Queryable,
  now: Date,
  limit: number,
): Promise<ExecutionKey[]> {
  return tx.query<ExecutionKey>(
    `SELECT job_id, thing_name, execution_number FROM job_executions
     WHERE timeout_at <= $1 AND status IN ('QUEUED', 'IN_PROGRESS')
     ORDER BY timeout_at LIMIT $2`,
    [now, limit],
  );
}

/**
 * [SPEC 4] QUEUED / IN_PROGRESS -> TIMED_OUT for the given executions whose deadline has passed, in one
 * statement; version + 1. The guard re-checks status and deadline, so an execution that a device finished or
 * restarted (new step deadline) since it was selected is left alone. The things must be locked (lockThings):
 * that is also why the previous status read in the same statement is exact.
 */
export async function timeOutExecutions(
  tx: Queryable,
  keys: readonly ExecutionKey[],
  now: Date,
): Promise<ExecutionChange[]> {
  if (keys.length === 0) return [];
  const rows = await tx.query<{
    jobId: string;
    thingName: string;
    executionNumber: number;
    previousStatus: ExecutionStatus;
  }>(
    `UPDATE job_executions e
     SET status = 'TIMED_OUT', version_number = e.version_number + 1, last_updated_at = $4
     FROM (SELECT p.job_id, p.thing_name, p.execution_number, p.status AS previous_status
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(job_id, thing_name, execution_number)
           JOIN job_executions p ON p.job_id = k.job_id AND p.thing_name = k.thing_name
                                AND p.execution_number = k.execution_number) o
     WHERE e.job_id = o.job_id AND e.thing_name = o.thing_name AND e.execution_number = o.execution_number
       AND e.status IN ('QUEUED', 'IN_PROGRESS') AND e.timeout_at <= $4
     RETURNING e.job_id, e.thing_name, e.execution_number, o.previous_status`,
    [keys.map((k) => k.jobId), keys.map((k) => k.thingName), keys.map((k) => k.executionNumber), now],
  );
  return rows.map((r) => ({
    jobId: r.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'TIMED_OUT',
    previousStatus: r.previousStatus,
  }));
}
