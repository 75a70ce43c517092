import type { Queryable } from './db.js';
import { HEAD_ORDER_SQL } from './notifications.js';
import { EXECUTION_COLUMNS, type ExecutionRow } from './rows.js';
import { LIMITS } from '../protocol/limits.js';
import type { ExecutionStatus } from '../protocol/states.js';

/** An execution with its job's document (the JSON text as the operator sent it), for device replies. */
export interface ExecutionWithDocument extends ExecutionRow {
  jobDocument: string;
}

const E_COLUMNS = EXECUTION_COLUMNS.split(',')
  .map((c) => `e.${c.trim()}`)
  .join(', ');

/** The pending executions of a thing in head order, at most the list cap (GetPendingJobExecutions). */
export async function selectPendingExecutions(db: Queryable, thingName: string): Promise<ExecutionRow[]> {
  return db.query<ExecutionRow>(
    `SELECT ${E_COLUMNS} FROM job_executions e
     WHERE e.thing_name = $1 AND e.status IN ('QUEUED', 'IN_PROGRESS')
     ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST}`,
    [thingName],
  );
}

/** The head of a thing ([SPEC 3]: IN_PROGRESS first, then queue order) with its job document. */
export async function selectHeadExecution(
  db: Queryable,
  thingName: string,
): Promise<ExecutionWithDocument | undefined> {
  const rows = await db.query<ExecutionWithDocument>(
    `SELECT ${E_COLUMNS}, j.document AS job_document
     FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
     WHERE e.thing_name = $1 AND e.status IN ('QUEUED', 'IN_PROGRESS')
     ORDER BY ${HEAD_ORDER_SQL} LIMIT 1`,
    [thingName],
  );
  return rows[0];
}

/** One execution of a job on a thing: the given executionNumber, or the latest one when it is omitted. */
export async function selectExecution(
  db: Queryable,
  args: { thingName: string; jobId: string; executionNumber?: number | undefined },
): Promise<ExecutionWithDocument | undefined> {
  const rows = await db.query<ExecutionWithDocument>(
    `SELECT ${E_COLUMNS}, j.document AS job_document
     FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
     WHERE e.thing_name = $1 AND e.job_id = $2 AND ($3::bigint IS NULL OR e.execution_number = $3::bigint)
     ORDER BY e.execution_number DESC LIMIT 1`,
    [args.thingName, args.jobId, args.executionNumber ?? null],
  );
  return rows[0];
}

export interface DeviceStatusChange {
  thingName: string;
  jobId: string;
  executionNumber: number;
  /** The statuses the execution may be in for the change to apply (the guard). */
  fromStatuses: readonly ExecutionStatus[];
  /** The versionNumber the execution must still have (the guard). */
  expectedVersion: number;
  status: ExecutionStatus;
  /** Replaces the stored statusDetails when given. */
  statusDetails?: Record<string, string> | undefined;
  /** Minutes from now for the step timer; -1 clears it; undefined leaves it. */
  stepTimeoutInMinutes?: number | undefined;
}

/**
 * The one guarded UPDATE of a device request (start-next claim and UpdateJobExecution): applies only while the
 * execution is in one of `fromStatuses` at `expectedVersion`, bumps the version, sets startedAt and the
 * in-progress deadline (from the job's timeoutConfig) at the first IN_PROGRESS, and keeps the step deadline
 * within the in-progress deadline ([SPEC 4]). Zero rows returned means the guard failed.
 */
export async function updateExecutionByDevice(
  tx: Queryable,
  change: DeviceStatusChange,
  now: Date,
): Promise<ExecutionWithDocument | undefined> {
  const inProgressDeadline = `CASE
      WHEN $5 = 'IN_PROGRESS' AND e.started_at IS NULL AND (j.timeout_config->>'inProgressTimeoutInMinutes') IS NOT NULL
        THEN $8::timestamptz + (j.timeout_config->>'inProgressTimeoutInMinutes')::int * interval '1 minute'
      ELSE e.in_progress_deadline END`;
  const rows = await tx.query<ExecutionWithDocument>(
    `UPDATE job_executions e SET
       status = $5,
       version_number = e.version_number + 1,
       status_details = coalesce($6::jsonb, e.status_details),
       last_updated_at = $8,
       started_at = CASE WHEN $5 = 'IN_PROGRESS' THEN coalesce(e.started_at, $8) ELSE e.started_at END,
       in_progress_deadline = ${inProgressDeadline},
       step_deadline = CASE
         WHEN $5 <> 'IN_PROGRESS' OR $7::int = -1 THEN NULL
         WHEN $7::int IS NULL THEN e.step_deadline
         ELSE LEAST($8::timestamptz + $7::int * interval '1 minute', ${inProgressDeadline}) END
     FROM jobs j
     WHERE j.job_id = e.job_id AND e.job_id = $1 AND e.thing_name = $2 AND e.execution_number = $3
       AND e.version_number = $4 AND e.status = ANY($9::text[])
     RETURNING ${E_COLUMNS}, j.document AS job_document`,
    [
      change.jobId,
      change.thingName,
      change.executionNumber,
      change.expectedVersion,
      change.status,
      change.statusDetails ?? null,
      change.stepTimeoutInMinutes ?? null,
      now,
      change.fromStatuses,
    ],
  );
  return rows[0];
}
