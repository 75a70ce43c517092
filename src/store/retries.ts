import type { Queryable } from './db.js';
import type { ExecutionChange } from './rows.js';

/** A retry to create: the next execution of a job on a thing, with its retryAttempt. */
export interface RetryItem {
  jobId: string;
  thingName: string;
  retryAttempt: number;
}

/**
 * Creates new QUEUED executions (next executionNumber, version 1) for the given retries, unless the thing has
 * a pending execution of the job already or the job is no longer IN_PROGRESS (fj_insert_retry_executions,
 * migration 0006). The things must be locked (lockThings). Whether and when a failure is retried is decided in
 * the write funnel's step 4 (fj_queue_retries).
 */
export async function insertRetryExecutions(
  tx: Queryable,
  items: readonly RetryItem[],
  now: Date,
): Promise<ExecutionChange[]> {
  if (items.length === 0) return [];
  const rows = await tx.query<{ jobId: string; thingName: string; executionNumber: number }>(
    `SELECT job_id, thing_name, execution_number FROM fj_insert_retry_executions($1, $2::text[], $3::text[], $4::int[])`,
    [now, items.map((i) => i.jobId), items.map((i) => i.thingName), items.map((i) => i.retryAttempt)],
  );
  return rows.map((r) => ({
    jobId: r.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'QUEUED',
    previousStatus: null,
  }));
}

/** The retries due at `now`, oldest first, at most limit. */
export async function selectDueRetries(tx: Queryable, now: Date, limit: number): Promise<RetryItem[]> {
  return tx.query<RetryItem>(
    `SELECT job_id, thing_name, retry_attempt FROM execution_retries WHERE due_at <= $1 ORDER BY due_at LIMIT $2`,
    [now, limit],
  );
}

/**
 * Deletes the given due retries and returns those it deleted; the caller creates their executions in the same
 * transaction (things locked first), so a retry is created exactly once whatever instance takes it.
 */
export async function deleteDueRetries(
  tx: Queryable,
  items: readonly RetryItem[],
  now: Date,
): Promise<RetryItem[]> {
  if (items.length === 0) return [];
  return tx.query<RetryItem>(
    `DELETE FROM execution_retries r USING unnest($1::text[], $2::text[]) AS k(job_id, thing_name)
     WHERE r.job_id = k.job_id AND r.thing_name = k.thing_name AND r.due_at <= $3
     RETURNING r.job_id, r.thing_name, r.retry_attempt`,
    [items.map((i) => i.jobId), items.map((i) => i.thingName), now],
  );
}

/** Whether a job still has retries waiting (it cannot complete before they are created). */
export const PENDING_RETRIES_SQL = `EXISTS (SELECT 1 FROM execution_retries r WHERE r.job_id = j.job_id)`;
