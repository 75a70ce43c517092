import type { Queryable } from './db.js';
import { EXECUTION_COLUMNS, type ExecutionRow } from './rows.js';
import type { JobStatus } from '../protocol/states.js';

/**
 * Dead letters: executions that failed for good. An execution is one when it is FAILED or TIMED_OUT, it is the
 * latest execution of its job on its thing (no retry was created after it) and no delayed retry of it is
 * waiting in execution_retries: its job's retries are used up, or it had none.
 */
const DEAD_LETTER_SQL = `e.status IN ('FAILED', 'TIMED_OUT')
  AND NOT EXISTS (SELECT 1 FROM job_executions n
                  WHERE n.job_id = e.job_id AND n.thing_name = e.thing_name AND n.execution_number > e.execution_number)
  AND NOT EXISTS (SELECT 1 FROM execution_retries r WHERE r.job_id = e.job_id AND r.thing_name = e.thing_name)`;

/** One attempt of a retry chain, already in the API's shape (epoch seconds, absent values left out). */
export interface AttemptRow {
  executionNumber: number;
  retryAttempt: number;
  status: string;
  statusDetails: { detailsMap: Record<string, string> };
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
}

export interface DeadLetterRow extends ExecutionRow {
  jobStatus: JobStatus;
  /** The chain that ended here, first attempt first: executions (n - retryAttempt) .. n of the thing. */
  attempts: AttemptRow[];
}

const E_COLUMNS = EXECUTION_COLUMNS.split(',')
  .map((c) => `e.${c.trim()}`)
  .join(', ');

/** Dead letters, newest first (by the queue sequence, off the failed-executions index), after a page's last. */
export async function selectDeadLettersPage(
  db: Queryable,
  args: {
    status?: 'FAILED' | 'TIMED_OUT' | undefined;
    jobId?: string | undefined;
    thingName?: string | undefined;
    afterSeq: number | null;
    limit: number;
  },
): Promise<DeadLetterRow[]> {
  return db.query<DeadLetterRow>(
    `SELECT ${E_COLUMNS}, j.status AS job_status, h.attempts
     FROM job_executions e
     JOIN jobs j ON j.job_id = e.job_id
     CROSS JOIN LATERAL (
       SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                'executionNumber', p.execution_number, 'retryAttempt', p.retry_attempt, 'status', p.status,
                'statusDetails', jsonb_build_object('detailsMap', p.status_details),
                'queuedAt', extract(epoch FROM p.queued_at), 'startedAt', extract(epoch FROM p.started_at),
                'lastUpdatedAt', extract(epoch FROM p.last_updated_at))) ORDER BY p.execution_number) AS attempts
       FROM job_executions p
       WHERE p.job_id = e.job_id AND p.thing_name = e.thing_name
         AND p.execution_number BETWEEN e.execution_number - e.retry_attempt AND e.execution_number) h
     WHERE ${DEAD_LETTER_SQL}
       AND ($1::text IS NULL OR e.status = $1) AND ($2::text IS NULL OR e.job_id = $2)
       AND ($3::text IS NULL OR e.thing_name = $3) AND ($4::bigint IS NULL OR e.seq < $4)
     ORDER BY e.seq DESC LIMIT $5`,
    [args.status ?? null, args.jobId ?? null, args.thingName ?? null, args.afterSeq, args.limit],
  );
}

/** Whether a delayed retry of the job is waiting for the thing (then the failure is not a dead letter yet). */
export async function hasWaitingRetry(db: Queryable, jobId: string, thingName: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 FROM execution_retries WHERE job_id = $1 AND thing_name = $2`, [
    jobId,
    thingName,
  ]);
  return rows.length > 0;
}

/**
 * A retry of a dead letter in a COMPLETED SNAPSHOT job makes the job IN_PROGRESS again (it completes again when
 * the new execution ends); an IN_PROGRESS job is left as it is. Returns the job's status after the change.
 */
export async function reopenJobForRetry(
  tx: Queryable,
  jobId: string,
  now: Date,
): Promise<JobStatus | undefined> {
  const rows = await tx.query<{ status: JobStatus }>(
    `WITH reopened AS (
       UPDATE jobs SET status = 'IN_PROGRESS', completed_at = NULL, last_updated_at = $2, version = version + 1
       WHERE job_id = $1 AND status = 'COMPLETED' RETURNING status)
     SELECT status FROM reopened
     UNION ALL
     SELECT status FROM jobs WHERE job_id = $1 AND NOT EXISTS (SELECT 1 FROM reopened)`,
    [jobId, now],
  );
  return rows[0]?.status;
}
