import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import { translatePgError } from './errors.js';
import { JOB_COLUMNS, type ExecutionChange, type JobRow, type TargetSelection } from './rows.js';
import { STATUS_COUNTERS, type JobStatus, type StatusCounts } from '../protocol/states.js';

export interface NewJob {
  jobId: string;
  status: JobStatus;
  targetSelection: TargetSelection;
  targets: string[];
  document: string;
  documentSource?: string | null;
  description?: string | null;
  jobTemplateArn?: string | null;
  documentParameters?: Record<string, string> | null;
  timeoutConfig?: object | null;
  retryConfig?: object | null;
  rolloutConfig?: object | null;
  abortConfig?: object | null;
  schedulingConfig?: object | null;
  presignedUrlConfig?: object | null;
  namespaceId?: string | null;
  priority?: number | null;
  jobTemplateVersion?: number | null;
  rolloutPending: boolean;
}

/** The priority each execution of job $1 copies (evaluated once per statement): 0 when the job has none. */
const JOB_PRIORITY_SQL = `coalesce((SELECT j.priority FROM jobs j WHERE j.job_id = $1), 0)`;

export async function insertJob(tx: Queryable, job: NewJob, now: Date): Promise<JobRow> {
  try {
    const rows = await tx.query<JobRow>(
      `INSERT INTO jobs (job_id, status, target_selection, targets, document, document_source, description,
         job_template_arn, document_parameters, timeout_config, retry_config, rollout_config, abort_config,
         scheduling_config, presigned_url_config, namespace_id, rollout_pending, created_at, last_updated_at,
         priority, job_template_version)
       VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb, $13::jsonb,
         $14::jsonb, $15::jsonb, $16, $17, $18, $18, $19, $20)
       RETURNING ${JOB_COLUMNS}`,
      [
        job.jobId,
        job.status,
        job.targetSelection,
        job.targets,
        job.document,
        job.documentSource ?? null,
        job.description ?? null,
        job.jobTemplateArn ?? null,
        job.documentParameters ?? null,
        job.timeoutConfig ?? null,
        job.retryConfig ?? null,
        job.rolloutConfig ?? null,
        job.abortConfig ?? null,
        job.schedulingConfig ?? null,
        job.presignedUrlConfig ?? null,
        job.namespaceId ?? null,
        job.rolloutPending,
        now,
        job.priority ?? null,
        job.jobTemplateVersion ?? null,
      ],
    );
    return rows[0] as JobRow;
  } catch (err) {
    translatePgError(err, { resource: 'job', id: job.jobId });
  }
}

export async function selectJob(
  db: Queryable,
  jobId: string,
  opts: { forUpdate?: boolean } = {},
): Promise<JobRow | undefined> {
  const rows = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [jobId],
  );
  return rows[0];
}

/** The named things and groups that do not exist, for an error that names them. */
export async function selectMissingTargets(
  db: Queryable,
  thingNames: readonly string[],
  groupNames: readonly string[],
): Promise<{ things: string[]; groups: string[] }> {
  const rows = await db.query<{ kind: string; name: string }>(
    `SELECT 'thing' AS kind, n AS name FROM unnest($1::text[]) n
       WHERE NOT EXISTS (SELECT 1 FROM things t WHERE t.thing_name = n)
     UNION ALL
     SELECT 'group', n FROM unnest($2::text[]) n
       WHERE NOT EXISTS (SELECT 1 FROM thing_groups g WHERE g.thing_group_name = n)`,
    [thingNames, groupNames],
  );
  return {
    things: rows.filter((r) => r.kind === 'thing').map((r) => r.name),
    groups: rows.filter((r) => r.kind === 'group').map((r) => r.name),
  };
}

/** The distinct things a job's targets expand to (group members included), in name order. */
export async function selectTargetThingNames(
  db: Queryable,
  thingNames: readonly string[],
  groupNames: readonly string[],
): Promise<string[]> {
  const rows = await db.query<{ thingName: string }>(
    `SELECT thing_name FROM things WHERE thing_name = ANY($1::text[])
     UNION
     SELECT thing_name FROM thing_group_members WHERE thing_group_name = ANY($2::text[])
     ORDER BY 1`,
    [thingNames, groupNames],
  );
  return rows.map((r) => r.thingName);
}

/**
 * Fan-out: one QUEUED execution for each given thing that has no pending execution of this job yet, in one
 * statement. The execution number continues from the thing's previous executions of the job (re-joining a
 * continuous job gives the next number). The things must be locked by the caller (lockThings).
 */
export async function insertExecutionsForThings(
  tx: Queryable,
  args: { jobId: string; thingNames: readonly string[]; queuedDeadline: Date | null },
  now: Date,
): Promise<ExecutionChange[]> {
  if (args.thingNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string; executionNumber: number }>(
    `INSERT INTO job_executions (job_id, thing_name, execution_number, status, queued_at, last_updated_at,
       queued_deadline, priority)
     SELECT $1, n.thing_name,
       coalesce((SELECT max(e.execution_number) FROM job_executions e
                 WHERE e.job_id = $1 AND e.thing_name = n.thing_name), 0) + 1,
       'QUEUED', $3, $3, $4, ${JOB_PRIORITY_SQL}
     FROM (SELECT DISTINCT unnest($2::text[]) AS thing_name ORDER BY 1) n
     WHERE NOT EXISTS (SELECT 1 FROM job_executions p WHERE p.job_id = $1 AND p.thing_name = n.thing_name
                         AND p.status IN (${PENDING_SQL}))
     RETURNING thing_name, execution_number`,
    [args.jobId, args.thingNames, now, args.queuedDeadline],
  );
  return rows.map((r) => ({
    jobId: args.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'QUEUED',
    previousStatus: null,
  }));
}

export interface JobProcessDetails extends StatusCounts {
  processingTargets?: string[];
}

/** Exact counters, from the latest execution of each thing (a retry replaces the attempt before it). */
export async function countThingsByStatus(db: Queryable, jobId: string): Promise<JobProcessDetails> {
  const rows = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*) AS n FROM (
       SELECT DISTINCT ON (thing_name) status FROM job_executions
       WHERE job_id = $1 ORDER BY thing_name, execution_number DESC) latest
     GROUP BY status`,
    [jobId],
  );
  const n = new Map(rows.map((r) => [r.status, r.n]));
  return Object.fromEntries(
    Object.entries(STATUS_COUNTERS).map(([status, counter]) => [counter, n.get(status) ?? 0]),
  ) as StatusCounts;
}

export interface JobListFilter {
  status?: JobStatus | undefined;
  targetSelection?: TargetSelection | undefined;
  /** A target ARN the job must name (ListJobs thingGroupName / thingGroupId). */
  targetArn?: string | undefined;
  namespaceId?: string | undefined;
}

/** A page of jobs, newest first, after the (createdAt, jobId) key of the previous page's last job. */
export async function selectJobsPage(
  db: Queryable,
  args: JobListFilter & { after: { createdAt: Date; jobId: string } | null; limit: number },
): Promise<JobRow[]> {
  return db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs
     WHERE ($1::text IS NULL OR status = $1)
       AND ($2::text IS NULL OR target_selection = $2)
       AND ($3::text IS NULL OR $3 = ANY(targets))
       AND ($4::text IS NULL OR namespace_id = $4)
       AND ($5::timestamptz IS NULL OR (created_at, job_id) < ($5, $6::text))
     ORDER BY created_at DESC, job_id DESC LIMIT $7`,
    [
      args.status ?? null,
      args.targetSelection ?? null,
      args.targetArn ?? null,
      args.namespaceId ?? null,
      args.after?.createdAt ?? null,
      args.after?.jobId ?? null,
      args.limit,
    ],
  );
}

/**
 * IN_PROGRESS CONTINUOUS jobs that name one of the target ARNs, share-locked so that a concurrent CancelJob or
 * DeleteJob waits for the caller's new executions (and the caller, once it gets the lock, sees the job as it is).
 */
export async function selectContinuousJobsTargeting(
  tx: Queryable,
  targetArns: readonly string[],
): Promise<JobRow[]> {
  if (targetArns.length === 0) return [];
  return tx.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs
     WHERE status = 'IN_PROGRESS' AND target_selection = 'CONTINUOUS' AND targets && $1::text[]
     ORDER BY job_id FOR SHARE`,
    [targetArns],
  );
}

/** CancelJob's change to the job row, guarded by the statuses it may start from and the version read. */
export async function updateJobCanceled(
  tx: Queryable,
  args: {
    jobId: string;
    fromStatuses: readonly JobStatus[];
    version: number;
    force: boolean;
    reasonCode: string | null;
    comment: string | null;
  },
  now: Date,
): Promise<JobRow | undefined> {
  const rows = await tx.query<JobRow>(
    `UPDATE jobs SET status = 'CANCELED', force_canceled = force_canceled OR $4,
       reason_code = coalesce($5, reason_code), comment = coalesce($6, comment), rollout_pending = false,
       completed_at = coalesce(completed_at, $7), last_updated_at = $7, version = version + 1
     WHERE job_id = $1 AND status = ANY($2::text[]) AND version = $3
     RETURNING ${JOB_COLUMNS}`,
    [args.jobId, args.fromStatuses, args.version, args.force, args.reasonCode, args.comment, now],
  );
  return rows[0];
}

export interface JobConfigPatch {
  description?: string | undefined;
  presignedUrlConfig?: object | undefined;
  rolloutConfig?: object | undefined;
  abortConfig?: object | undefined;
  timeoutConfig?: object | undefined;
  retryConfig?: object | undefined;
}

/** UpdateJob: sets the given fields, guarded by the version read; absent fields keep their value. */
export async function updateJobConfig(
  tx: Queryable,
  args: { jobId: string; version: number; patch: JobConfigPatch },
  now: Date,
): Promise<JobRow | undefined> {
  const p = args.patch;
  const rows = await tx.query<JobRow>(
    `UPDATE jobs SET
       description = CASE WHEN $3 THEN $4 ELSE description END,
       presigned_url_config = CASE WHEN $5 THEN $6::jsonb ELSE presigned_url_config END,
       rollout_config = CASE WHEN $7 THEN $8::jsonb ELSE rollout_config END,
       abort_config = CASE WHEN $9 THEN $10::jsonb ELSE abort_config END,
       timeout_config = CASE WHEN $11 THEN $12::jsonb ELSE timeout_config END,
       retry_config = CASE WHEN $13 THEN $14::jsonb ELSE retry_config END,
       last_updated_at = $15, version = version + 1
     WHERE job_id = $1 AND version = $2 AND status <> 'DELETION_IN_PROGRESS'
     RETURNING ${JOB_COLUMNS}`,
    [
      args.jobId,
      args.version,
      p.description !== undefined,
      p.description ?? null,
      p.presignedUrlConfig !== undefined,
      p.presignedUrlConfig ?? null,
      p.rolloutConfig !== undefined,
      p.rolloutConfig ?? null,
      p.abortConfig !== undefined,
      p.abortConfig ?? null,
      p.timeoutConfig !== undefined,
      p.timeoutConfig ?? null,
      p.retryConfig !== undefined,
      p.retryConfig ?? null,
      now,
    ],
  );
  return rows[0];
}

/** AssociateTargetsWithJob: appends targets not yet named, guarded by status and version. */
export async function updateJobAddTargets(
  tx: Queryable,
  args: { jobId: string; version: number; targets: readonly string[]; comment: string | null },
  now: Date,
): Promise<JobRow | undefined> {
  const rows = await tx.query<JobRow>(
    `UPDATE jobs SET
       targets = targets || ARRAY(SELECT t FROM unnest($3::text[]) WITH ORDINALITY AS u(t, i)
                                  WHERE NOT (t = ANY(targets)) ORDER BY i),
       comment = coalesce($4, comment), last_updated_at = $5, version = version + 1
     WHERE job_id = $1 AND version = $2 AND status = 'IN_PROGRESS' AND target_selection = 'CONTINUOUS'
     RETURNING ${JOB_COLUMNS}`,
    [args.jobId, args.version, args.targets, args.comment, now],
  );
  return rows[0];
}

/** Deletes a job row (its executions go with it), guarded by the version read. */
export async function deleteJobRow(tx: Queryable, jobId: string, version: number): Promise<boolean> {
  const rows = await tx.query(`DELETE FROM jobs WHERE job_id = $1 AND version = $2 RETURNING job_id`, [
    jobId,
    version,
  ]);
  return rows.length > 0;
}

/**
 * Expands targets (things, and the members of groups) and takes the row lock of each thing, in name order, in
 * one statement: the lockThings of a fan-out, without shipping the names to the client and back first.
 */
export async function lockTargetThings(
  tx: Queryable,
  thingNames: readonly string[],
  groupNames: readonly string[],
): Promise<string[]> {
  if (thingNames.length === 0 && groupNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string }>(
    `SELECT t.thing_name FROM things t
     WHERE t.thing_name = ANY($1::text[])
        OR t.thing_name IN (SELECT m.thing_name FROM thing_group_members m WHERE m.thing_group_name = ANY($2::text[]))
     ORDER BY t.thing_name FOR UPDATE OF t`,
    [thingNames, groupNames],
  );
  return rows.map((r) => r.thingName);
}

/**
 * Fan-out of a job created in this transaction: it has no executions yet, so each (distinct, locked) thing gets
 * execution number 1 by a plain INSERT ... SELECT, with no per-thing look-up of earlier executions.
 */
export async function insertFirstExecutions(
  tx: Queryable,
  args: { jobId: string; thingNames: readonly string[]; queuedDeadline: Date | null },
  now: Date,
): Promise<ExecutionChange[]> {
  if (args.thingNames.length === 0) return [];
  await tx.query(
    `INSERT INTO job_executions (job_id, thing_name, execution_number, status, queued_at, last_updated_at,
       queued_deadline, priority)
     SELECT $1, n, 1, 'QUEUED', $3, $3, $4, ${JOB_PRIORITY_SQL} FROM unnest($2::text[]) AS n`,
    [args.jobId, args.thingNames, now, args.queuedDeadline],
  );
  return args.thingNames.map((thingName) => ({
    jobId: args.jobId,
    thingName,
    executionNumber: 1,
    status: 'QUEUED',
    previousStatus: null,
  }));
}
