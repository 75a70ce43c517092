import type { Queryable } from './db.js';
import { JOB_COLUMNS, type JobRow } from './rows.js';

/**
 * Records the things a rollout-managed job is to reach (its targets expanded, groups included, as of now), in
 * one statement. Things already recorded are skipped.
 */
export async function insertRolloutTargets(
  tx: Queryable,
  jobId: string,
  targets: { thingNames: readonly string[]; groupNames: readonly string[] },
): Promise<number> {
  const rows = await tx.query<{ n: number }>(
    `WITH ins AS (
       INSERT INTO rollout_targets (job_id, thing_name)
       SELECT $1, n.thing_name FROM (
         SELECT thing_name FROM things WHERE thing_name = ANY($2::text[])
         UNION
         SELECT thing_name FROM thing_group_members WHERE thing_group_name = ANY($3::text[])) n
       ORDER BY n.thing_name
       ON CONFLICT DO NOTHING RETURNING 1)
     SELECT count(*) AS n FROM ins`,
    [jobId, targets.thingNames, targets.groupNames],
  );
  return rows[0]?.n ?? 0;
}

/** Jobs the rollout worker looks after: scheduled, rolling out, or with an end time or abort criteria. */
export async function selectJobsToSupervise(db: Queryable, limit: number): Promise<JobRow[]> {
  return db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs
     WHERE status IN ('SCHEDULED', 'IN_PROGRESS')
       AND (rollout_pending OR scheduling_config IS NOT NULL OR abort_config IS NOT NULL)
     ORDER BY created_at, job_id LIMIT $1`,
    [limit],
  );
}

export interface RolloutProgress {
  /**
   * Things released before the rate window (numberOfNotifiedThings as the window opened): the exponential rate
   * grows from it, so releases within a window never raise that window's own rate.
   */
  released: number;
  /** Released after the start of the rate window. */
  releasedInWindow: number;
  /** Things of the job whose latest execution SUCCEEDED (numberOfSucceededThings). */
  succeeded: number;
}

/** Counters the rate depends on, as of this transaction. */
export async function selectRolloutProgress(
  tx: Queryable,
  jobId: string,
  windowStart: Date,
): Promise<RolloutProgress> {
  const rows = await tx.query<RolloutProgress>(
    `SELECT
       (SELECT count(*) FROM rollout_targets WHERE job_id = $1 AND released_at <= $2) AS released,
       (SELECT count(*) FROM rollout_targets WHERE job_id = $1 AND released_at > $2) AS released_in_window,
       (SELECT count(*) FROM job_executions WHERE job_id = $1 AND status = 'SUCCEEDED') AS succeeded`,
    [jobId, windowStart],
  );
  return rows[0] as RolloutProgress;
}

/** The next things to release, in name order. */
export async function selectUnreleasedTargets(
  tx: Queryable,
  jobId: string,
  limit: number,
): Promise<string[]> {
  const rows = await tx.query<{ thingName: string }>(
    `SELECT thing_name FROM rollout_targets WHERE job_id = $1 AND released_at IS NULL
     ORDER BY thing_name LIMIT $2`,
    [jobId, limit],
  );
  return rows.map((r) => r.thingName);
}

/** Marks things released; returns those that were not released before (the guard against a double release). */
export async function markTargetsReleased(
  tx: Queryable,
  jobId: string,
  thingNames: readonly string[],
  now: Date,
): Promise<string[]> {
  if (thingNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string }>(
    `UPDATE rollout_targets SET released_at = $3
     WHERE job_id = $1 AND thing_name = ANY($2::text[]) AND released_at IS NULL
     RETURNING thing_name`,
    [jobId, thingNames, now],
  );
  return rows.map((r) => r.thingName).sort();
}

/**
 * Of the given things, those without any execution of the job: a thing that joined a CONTINUOUS job's group
 * during its rollout got its execution then, and is not given a second one when the rollout reaches it.
 */
export async function selectThingsWithoutExecution(
  tx: Queryable,
  jobId: string,
  thingNames: readonly string[],
): Promise<string[]> {
  if (thingNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string }>(
    `SELECT n AS thing_name FROM unnest($2::text[]) AS n
     WHERE NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.job_id = $1 AND e.thing_name = n)
     ORDER BY n`,
    [jobId, thingNames],
  );
  return rows.map((r) => r.thingName);
}

/** Locks the job row (after its things: lock order things, executions, jobs) and returns it. */
export async function lockJob(tx: Queryable, jobId: string): Promise<JobRow | undefined> {
  const rows = await tx.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE`, [
    jobId,
  ]);
  return rows[0];
}

/** SCHEDULED -> IN_PROGRESS at the start time (schedulingConfig.startTime). */
export async function startScheduledJob(tx: Queryable, jobId: string, now: Date): Promise<boolean> {
  const rows = await tx.query(
    `UPDATE jobs SET status = 'IN_PROGRESS', version = version + 1, last_updated_at = $2
     WHERE job_id = $1 AND status = 'SCHEDULED' RETURNING 1`,
    [jobId, now],
  );
  return rows.length > 0;
}

/** Ends a job's rollout (every target released, or STOP_ROLLOUT at the end time). */
export async function finishRollout(tx: Queryable, jobId: string, now: Date): Promise<boolean> {
  const rows = await tx.query(
    `UPDATE jobs SET rollout_pending = false, version = version + 1, last_updated_at = $2
     WHERE job_id = $1 AND rollout_pending RETURNING 1`,
    [jobId, now],
  );
  return rows.length > 0;
}

/** Whether any target of the job is still to be released. */
export async function hasUnreleasedTargets(tx: Queryable, jobId: string): Promise<boolean> {
  const rows = await tx.query(
    `SELECT 1 FROM rollout_targets WHERE job_id = $1 AND released_at IS NULL LIMIT 1`,
    [jobId],
  );
  return rows.length > 0;
}

/** Rollout stops with the job: canceled or deleted jobs are no longer rolling out (isConcurrent false). */
export async function finishRolloutOfEndedJobs(db: Queryable, now: Date): Promise<number> {
  const rows = await db.query(
    `UPDATE jobs SET rollout_pending = false, version = version + 1, last_updated_at = $1
     WHERE rollout_pending AND status IN ('CANCELED', 'COMPLETED', 'DELETION_IN_PROGRESS') RETURNING 1`,
    [now],
  );
  return rows.length;
}
