import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
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
     WHERE e.thing_name = $1 AND e.status IN (${PENDING_SQL})
     ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST}`,
    [thingName],
  );
}

/** The head of a thing ([protocol §3]: IN_PROGRESS first, then queue order) with its job document. */
export async function selectHeadExecution(
  db: Queryable,
  thingName: string,
): Promise<ExecutionWithDocument | undefined> {
  const rows = await db.query<ExecutionWithDocument>(
    `SELECT ${E_COLUMNS}, j.document AS job_document
     FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
     WHERE e.thing_name = $1 AND e.status IN (${PENDING_SQL})
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

/**
 * The head of each thing ([protocol §3]) with its job document, for many things in one statement: one index probe
 * (LIMIT 1 on the head-order index) per thing, never a scan of every pending execution. Things with nothing
 * pending are absent from the result.
 */
export async function selectHeadExecutions(
  db: Queryable,
  thingNames: readonly string[],
): Promise<ExecutionWithDocument[]> {
  if (thingNames.length === 0) return [];
  return db.query<ExecutionWithDocument>(
    `SELECT h.* FROM unnest($1::text[]) AS t(thing_name)
     CROSS JOIN LATERAL (
       SELECT ${E_COLUMNS}, j.document AS job_document
       FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
       WHERE e.thing_name = t.thing_name AND e.status IN (${PENDING_SQL})
       ORDER BY ${HEAD_ORDER_SQL} LIMIT 1) h`,
    [thingNames],
  );
}

export interface ExecutionKeyQuery {
  thingName: string;
  jobId: string;
  /** The latest execution of the job on the thing when omitted. */
  executionNumber?: number | undefined;
}

/**
 * selectExecution for many (thing, job) pairs in one statement, each by primary key. Keys that name no
 * execution are absent from the result; at most one key per thing, so rows are told apart by thingName.
 */
export async function selectExecutionsByKey(
  db: Queryable,
  keys: readonly ExecutionKeyQuery[],
): Promise<ExecutionWithDocument[]> {
  if (keys.length === 0) return [];
  return db.query<ExecutionWithDocument>(
    `SELECT x.* FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(thing_name, job_id, execution_number)
     CROSS JOIN LATERAL (
       SELECT ${E_COLUMNS}, j.document AS job_document
       FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
       WHERE e.thing_name = k.thing_name AND e.job_id = k.job_id
         AND (k.execution_number IS NULL OR e.execution_number = k.execution_number)
       ORDER BY e.execution_number DESC LIMIT 1) x`,
    [keys.map((k) => k.thingName), keys.map((k) => k.jobId), keys.map((k) => k.executionNumber ?? null)],
  );
}

export interface DeviceStatusChange {
  thingName: string;
  jobId: string;
  executionNumber: number;
  /** The guard: a claim applies to a QUEUED execution only, an update to any pending one. */
  claim: boolean;
  /** The versionNumber the execution must still have (the guard). */
  expectedVersion: number;
  status: ExecutionStatus;
  /** Replaces the stored statusDetails when given. */
  statusDetails?: Record<string, string> | undefined;
  /** Minutes from now for the step timer; -1 clears it; undefined leaves it. */
  stepTimeoutInMinutes?: number | undefined;
}

/**
 * The one guarded UPDATE of device requests (start-next claims and UpdateJobExecution), for any number of
 * executions in one statement: each applies only while its execution is still pending (QUEUED for a claim) at
 * `expectedVersion`; it bumps the version, sets startedAt and the in-progress deadline (from the job's
 * timeoutConfig) at the first IN_PROGRESS, and keeps the step deadline within the in-progress deadline
 * ([protocol §4]). A change whose guard failed has no row in the result.
 */
export async function updateExecutionsByDevice(
  tx: Queryable,
  changes: readonly DeviceStatusChange[],
  now: Date,
): Promise<ExecutionWithDocument[]> {
  if (changes.length === 0) return [];
  const inProgressDeadline = `CASE
      WHEN u.status = 'IN_PROGRESS' AND e.started_at IS NULL AND (j.timeout_config->>'inProgressTimeoutInMinutes') IS NOT NULL
        THEN $1::timestamptz + (j.timeout_config->>'inProgressTimeoutInMinutes')::int * interval '1 minute'
      ELSE e.in_progress_deadline END`;
  return tx.query<ExecutionWithDocument>(
    `UPDATE job_executions e SET
       status = u.status,
       version_number = e.version_number + 1,
       status_details = coalesce(u.status_details::jsonb, e.status_details),
       last_updated_at = $1,
       started_at = CASE WHEN u.status = 'IN_PROGRESS' THEN coalesce(e.started_at, $1) ELSE e.started_at END,
       in_progress_deadline = ${inProgressDeadline},
       step_deadline = CASE
         WHEN u.status <> 'IN_PROGRESS' OR u.step_timeout = -1 THEN NULL
         WHEN u.step_timeout IS NULL THEN e.step_deadline
         ELSE LEAST($1::timestamptz + u.step_timeout * interval '1 minute', ${inProgressDeadline}) END
     FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::int[], $9::text[])
            AS u(job_id, thing_name, execution_number, expected_version, status, status_details, step_timeout, guard),
          jobs j
     WHERE j.job_id = e.job_id AND e.job_id = u.job_id AND e.thing_name = u.thing_name
       AND e.execution_number = u.execution_number AND e.version_number = u.expected_version
       AND (e.status = 'QUEUED' OR (u.guard = 'pending' AND e.status = 'IN_PROGRESS'))
     RETURNING ${E_COLUMNS}, j.document AS job_document`,
    [
      now,
      changes.map((c) => c.jobId),
      changes.map((c) => c.thingName),
      changes.map((c) => c.executionNumber),
      changes.map((c) => c.expectedVersion),
      changes.map((c) => c.status),
      changes.map((c) => (c.statusDetails === undefined ? null : JSON.stringify(c.statusDetails))),
      changes.map((c) => c.stepTimeoutInMinutes ?? null),
      changes.map((c) => (c.claim ? 'queued' : 'pending')),
    ],
  );
}
