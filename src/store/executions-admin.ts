import type { Queryable } from './db.js';
import { EXECUTION_COLUMNS, type ExecutionRow, type ExecutionChange } from './rows.js';
import { PENDING_STATUSES, type ExecutionStatus } from '../protocol/states.js';

/**
 * Control-plane execution queries and changes (operator API: lists, describe, cancel, delete, REMOVED). The
 * device-side claims and updates live in executions.ts. Every change here is a guarded UPDATE or DELETE
 * (status and version_number as read) on things the caller has locked (lockThings), bumps version_number by 1,
 * and returns ExecutionChange rows for the write funnel (funnel.ts).
 */

export type ExecutionKey = { jobId: string; thingName: string; executionNumber: number };

/** One execution; the latest of the job on the thing when executionNumber is not given. */
export async function selectExecution(
  db: Queryable,
  args: { jobId: string; thingName: string; executionNumber?: number | undefined },
): Promise<ExecutionRow | undefined> {
  const rows = await db.query<ExecutionRow>(
    `SELECT ${EXECUTION_COLUMNS} FROM job_executions
     WHERE job_id = $1 AND thing_name = $2 AND ($3::bigint IS NULL OR execution_number = $3)
     ORDER BY execution_number DESC LIMIT 1`,
    [args.jobId, args.thingName, args.executionNumber ?? null],
  );
  return rows[0];
}

/** ListJobExecutionsForJob: in (thingName, executionNumber) order, after the previous page's last key. */
export async function selectExecutionsForJobPage(
  db: Queryable,
  args: {
    jobId: string;
    status?: ExecutionStatus | undefined;
    after: { thingName: string; executionNumber: number } | null;
    limit: number;
  },
): Promise<ExecutionRow[]> {
  return db.query<ExecutionRow>(
    `SELECT ${EXECUTION_COLUMNS} FROM job_executions
     WHERE job_id = $1 AND ($2::text IS NULL OR status = $2)
       AND ($3::text IS NULL OR (thing_name, execution_number) > ($3, $4::bigint))
     ORDER BY thing_name, execution_number LIMIT $5`,
    [
      args.jobId,
      args.status ?? null,
      args.after?.thingName ?? null,
      args.after?.executionNumber ?? null,
      args.limit,
    ],
  );
}

/** ListJobExecutionsForThing: newest first (queuedAt, then the queue sequence), after the previous page. */
export async function selectExecutionsForThingPage(
  db: Queryable,
  args: {
    thingName: string;
    status?: ExecutionStatus | undefined;
    jobId?: string | undefined;
    namespaceId?: string | undefined;
    after: { queuedAt: Date; seq: number } | null;
    limit: number;
  },
): Promise<ExecutionRow[]> {
  return db.query<ExecutionRow>(
    `SELECT ${EXECUTION_COLUMNS} FROM job_executions e
     WHERE e.thing_name = $1 AND ($2::text IS NULL OR e.status = $2) AND ($3::text IS NULL OR e.job_id = $3)
       AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = e.job_id AND j.namespace_id = $4))
       AND ($5::timestamptz IS NULL OR (e.queued_at, e.seq) < ($5, $6::bigint))
     ORDER BY e.queued_at DESC, e.seq DESC LIMIT $7`,
    [
      args.thingName,
      args.status ?? null,
      args.jobId ?? null,
      args.namespaceId ?? null,
      args.after?.queuedAt ?? null,
      args.after?.seq ?? null,
      args.limit,
    ],
  );
}

/** Names of the things with an execution of the job in one of the statuses (to lock them before a change). */
export async function selectThingNamesOfJob(
  db: Queryable,
  jobId: string,
  statuses: readonly ExecutionStatus[] | null,
): Promise<string[]> {
  const rows = await db.query<{ thingName: string }>(
    `SELECT DISTINCT thing_name FROM job_executions
     WHERE job_id = $1 AND ($2::text[] IS NULL OR status = ANY($2::text[])) ORDER BY thing_name`,
    [jobId, statuses],
  );
  return rows.map((r) => r.thingName);
}

/**
 * CancelJob: every execution of the job in fromStatus, on the locked things, becomes CANCELED in one statement,
 * guarded by that status (the caller runs it once per status, so each change knows the status it left). No
 * self-join: right after a large fan-out the planner's statistics are stale, and a join of job_executions with
 * itself degenerates into a nested loop over every pair of rows.
 */
export async function cancelExecutionsOfJob(
  tx: Queryable,
  args: { jobId: string; thingNames: readonly string[]; fromStatus: ExecutionStatus; force: boolean },
  now: Date,
): Promise<ExecutionChange[]> {
  if (args.thingNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string; executionNumber: number }>(
    `UPDATE job_executions e
     SET status = 'CANCELED', force_canceled = $4, version_number = e.version_number + 1, last_updated_at = $5
     WHERE e.job_id = $1 AND e.status = $3 AND e.thing_name = ANY($2::text[])
     RETURNING e.thing_name, e.execution_number`,
    [args.jobId, args.thingNames, args.fromStatus, args.force, now],
  );
  return rows.map((r) => ({
    jobId: args.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'CANCELED',
    previousStatus: args.fromStatus,
  }));
}

/** CancelJobExecution: one execution to CANCELED, guarded by the status and version read. */
export async function cancelExecution(
  tx: Queryable,
  args: ExecutionKey & {
    fromStatus: ExecutionStatus;
    versionNumber: number;
    force: boolean;
    statusDetails: Record<string, string> | null;
  },
  now: Date,
): Promise<ExecutionRow | undefined> {
  const rows = await tx.query<ExecutionRow>(
    `UPDATE job_executions
     SET status = 'CANCELED', force_canceled = $6, status_details = coalesce($7::jsonb, status_details),
       version_number = version_number + 1, last_updated_at = $8
     WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3 AND status = $4 AND version_number = $5
     RETURNING ${EXECUTION_COLUMNS}`,
    [
      args.jobId,
      args.thingName,
      args.executionNumber,
      args.fromStatus,
      args.versionNumber,
      args.force,
      args.statusDetails,
      now,
    ],
  );
  return rows[0];
}

/**
 * [protocol §4] REMOVED: pending executions of the locked things whose thing is no longer a target. With jobIds, only
 * executions of those jobs on things the job no longer names, directly or through a group the thing is still in
 * (a thing that left a group of a CONTINUOUS job); without, every pending execution (a deleted thing).
 */
export async function removePendingExecutions(
  tx: Queryable,
  args: {
    thingNames: readonly string[];
    jobIds: readonly string[] | null;
    /** ARN prefixes `arn:aws:iot:{region}:{account}:thing/` and `...:thinggroup/`. */
    thingArnPrefix: string;
    groupArnPrefix: string;
  },
  now: Date,
): Promise<ExecutionChange[]> {
  if (args.thingNames.length === 0 || args.jobIds?.length === 0) return [];
  const changes: ExecutionChange[] = [];
  // One statement per status it leaves, each guarded by it (see cancelExecutionsOfJob on self-joins).
  for (const fromStatus of PENDING_STATUSES) {
    const rows = await tx.query<{ jobId: string; thingName: string; executionNumber: number }>(
      `UPDATE job_executions e
       SET status = 'REMOVED', version_number = e.version_number + 1, last_updated_at = $5
       WHERE e.thing_name = ANY($1::text[]) AND e.status = $6
         AND ($2::text[] IS NULL OR (
           e.job_id = ANY($2::text[])
           AND NOT EXISTS (
             SELECT 1 FROM jobs j WHERE j.job_id = e.job_id AND (
               $3 || e.thing_name = ANY(j.targets)
               OR EXISTS (SELECT 1 FROM thing_group_members m
                          WHERE m.thing_name = e.thing_name AND $4 || m.thing_group_name = ANY(j.targets))))))
       RETURNING e.job_id, e.thing_name, e.execution_number`,
      [args.thingNames, args.jobIds, args.thingArnPrefix, args.groupArnPrefix, now, fromStatus],
    );
    for (const r of rows) {
      changes.push({
        jobId: r.jobId,
        thingName: r.thingName,
        executionNumber: r.executionNumber,
        status: 'REMOVED',
        previousStatus: fromStatus,
      });
    }
  }
  return changes;
}

/** DeleteJob: every execution of the job, deleted in one statement (the things with pending ones locked). */
export async function deleteExecutionsOfJob(tx: Queryable, jobId: string): Promise<ExecutionChange[]> {
  const rows = await tx.query<{ thingName: string; executionNumber: number; status: ExecutionStatus }>(
    `DELETE FROM job_executions WHERE job_id = $1 RETURNING thing_name, execution_number, status`,
    [jobId],
  );
  return rows.map((r) => ({
    jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: r.status,
    previousStatus: r.status,
    deleted: true,
  }));
}

/** DeleteJobExecution: one execution, guarded by the status and version read. */
export async function deleteExecution(
  tx: Queryable,
  args: ExecutionKey & { status: ExecutionStatus; versionNumber: number },
): Promise<boolean> {
  const rows = await tx.query(
    `DELETE FROM job_executions
     WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3 AND status = $4 AND version_number = $5
     RETURNING job_id`,
    [args.jobId, args.thingName, args.executionNumber, args.status, args.versionNumber],
  );
  return rows.length > 0;
}
