import type { Queryable } from './db.js';
import { translatePgError } from './errors.js';

export type ConcurrencyPolicy = 'ALLOW' | 'SKIP';
export type ScheduleState = 'ENABLED' | 'PAUSED';
export type RunOutcome = 'CREATED' | 'SKIPPED' | 'FAILED';

export interface ScheduleRow {
  scheduleId: string;
  description: string | null;
  scheduleExpression: string;
  timezone: string;
  jobTemplateId: string;
  jobTemplateVersion: number | null;
  targets: string[];
  documentParameters: Record<string, string> | null;
  concurrencyPolicy: ConcurrencyPolicy;
  state: ScheduleState;
  nextRunAt: Date | null;
  version: number;
  createdAt: Date;
  lastUpdatedAt: Date;
  /** Its tenant (migration 0008): the schedule worker creates the tick's job as that tenant. */
  tenantId: string;
}

export interface ScheduleRunRow {
  scheduleId: string;
  scheduledAt: Date;
  jobId: string;
  outcome: RunOutcome;
  reason: string | null;
  createdAt: Date;
  /** The status of the run's job now (absent when it was never created or has been deleted). */
  jobStatus: string | null;
}

const COLUMNS = `schedule_id, description, schedule_expression, timezone, job_template_id, job_template_version,
  targets, document_parameters, concurrency_policy, state, next_run_at, version, created_at, last_updated_at,
  tenant_id`;

export type ScheduleInput = Omit<ScheduleRow, 'version' | 'createdAt' | 'lastUpdatedAt' | 'tenantId'>;

/** PutJobSchedule: creates the schedule, or replaces every field of an existing one (version + 1). */
export async function upsertSchedule(
  db: Queryable,
  s: ScheduleInput,
  now: Date,
): Promise<ScheduleRow & { created: boolean }> {
  const rows = await db
    .query<ScheduleRow & { created: boolean }>(
      `INSERT INTO job_schedules (schedule_id, description, schedule_expression, timezone, job_template_id,
       job_template_version, targets, document_parameters, concurrency_policy, state, next_run_at, created_at,
       last_updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8::jsonb, $9, $10, $11, $12, $12)
     ON CONFLICT (schedule_id) DO UPDATE SET description = excluded.description,
       schedule_expression = excluded.schedule_expression, timezone = excluded.timezone,
       job_template_id = excluded.job_template_id, job_template_version = excluded.job_template_version,
       targets = excluded.targets, document_parameters = excluded.document_parameters,
       concurrency_policy = excluded.concurrency_policy, state = excluded.state,
       next_run_at = excluded.next_run_at, version = job_schedules.version + 1, last_updated_at = excluded.last_updated_at
     RETURNING ${COLUMNS}, (xmax = 0) AS created`,
      [
        s.scheduleId,
        s.description,
        s.scheduleExpression,
        s.timezone,
        s.jobTemplateId,
        s.jobTemplateVersion,
        s.targets,
        s.documentParameters,
        s.concurrencyPolicy,
        s.state,
        s.nextRunAt,
        now,
      ],
    )
    .catch((err: unknown) => translatePgError(err, { resource: 'job schedule', id: s.scheduleId }));
  return rows[0] as ScheduleRow & { created: boolean };
}

export async function selectSchedule(db: Queryable, scheduleId: string): Promise<ScheduleRow | undefined> {
  const rows = await db.query<ScheduleRow>(`SELECT ${COLUMNS} FROM job_schedules WHERE schedule_id = $1`, [
    scheduleId,
  ]);
  return rows[0];
}

export async function selectSchedulesPage(
  db: Queryable,
  args: { after: string | null; limit: number },
): Promise<ScheduleRow[]> {
  return db.query<ScheduleRow>(
    `SELECT ${COLUMNS} FROM job_schedules WHERE ($1::text IS NULL OR schedule_id > $1)
     ORDER BY schedule_id LIMIT $2`,
    [args.after, args.limit],
  );
}

export async function deleteScheduleRow(db: Queryable, scheduleId: string): Promise<boolean> {
  const rows = await db.query(`DELETE FROM job_schedules WHERE schedule_id = $1 RETURNING schedule_id`, [
    scheduleId,
  ]);
  return rows.length > 0;
}

/** Pause (nextRunAt null) or resume (nextRunAt the next tick from now), from the other state only. */
export async function setScheduleState(
  db: Queryable,
  args: { scheduleId: string; state: ScheduleState; nextRunAt: Date | null },
  now: Date,
): Promise<ScheduleRow | undefined> {
  const rows = await db.query<ScheduleRow>(
    `UPDATE job_schedules SET state = $2, next_run_at = $3, version = version + 1, last_updated_at = $4
     WHERE schedule_id = $1 AND state <> $2 RETURNING ${COLUMNS}`,
    [args.scheduleId, args.state, args.nextRunAt, now],
  );
  return rows[0];
}

/** ENABLED schedules whose next tick is due, earliest first, off the due index. */
export async function selectDueSchedules(db: Queryable, now: Date, limit: number): Promise<ScheduleRow[]> {
  return db.query<ScheduleRow>(
    `SELECT ${COLUMNS} FROM job_schedules WHERE state = 'ENABLED' AND next_run_at <= $1
     ORDER BY next_run_at LIMIT $2`,
    [now, limit],
  );
}

/**
 * Claims a tick in the caller's transaction: moves next_run_at from the value read to the next tick (guarded,
 * and SKIP LOCKED so an instance claiming the same tick at this moment makes this one give up at once) and
 * records the run. False when the tick was taken, or the schedule paused or changed, meanwhile.
 */
export async function claimScheduleTick(
  tx: Queryable,
  args: {
    scheduleId: string;
    expectedNextRunAt: Date;
    nextRunAt: Date;
    scheduledAt: Date;
    jobId: string;
    outcome: RunOutcome;
    reason: string | null;
  },
  now: Date,
): Promise<boolean> {
  const rows = await tx.query(
    `WITH claimed AS (
       UPDATE job_schedules SET next_run_at = $3
       WHERE schedule_id = (SELECT schedule_id FROM job_schedules
                            WHERE schedule_id = $1 AND state = 'ENABLED' AND next_run_at = $2
                            FOR UPDATE SKIP LOCKED)
       RETURNING schedule_id)
     INSERT INTO job_schedule_runs (schedule_id, scheduled_at, job_id, outcome, reason, created_at)
     SELECT schedule_id, $4, $5, $6, $7, $8 FROM claimed
     ON CONFLICT (schedule_id, scheduled_at) DO NOTHING
     RETURNING schedule_id`,
    [
      args.scheduleId,
      args.expectedNextRunAt,
      args.nextRunAt,
      args.scheduledAt,
      args.jobId,
      args.outcome,
      args.reason,
      now,
    ],
  );
  return rows.length > 0;
}

/** Whether the schedule's latest created job is still running (SCHEDULED or IN_PROGRESS). */
export async function hasActiveRun(db: Queryable, scheduleId: string): Promise<boolean> {
  const rows = await db.query<{ active: boolean }>(
    `SELECT j.status IN ('SCHEDULED', 'IN_PROGRESS') AS active
     FROM job_schedule_runs r JOIN jobs j ON j.job_id = r.job_id
     WHERE r.schedule_id = $1 AND r.outcome = 'CREATED'
     ORDER BY r.scheduled_at DESC LIMIT 1`,
    [scheduleId],
  );
  return rows[0]?.active === true;
}

/** A schedule's runs, newest first, before a page's last. */
export async function selectScheduleRunsPage(
  db: Queryable,
  args: { scheduleId: string; before: Date | null; limit: number },
): Promise<ScheduleRunRow[]> {
  return db.query<ScheduleRunRow>(
    `SELECT r.schedule_id, r.scheduled_at, r.job_id, r.outcome, r.reason, r.created_at, j.status AS job_status
     FROM job_schedule_runs r LEFT JOIN jobs j ON j.job_id = r.job_id AND r.outcome = 'CREATED'
     WHERE r.schedule_id = $1 AND ($2::timestamptz IS NULL OR r.scheduled_at < $2)
     ORDER BY r.scheduled_at DESC LIMIT $3`,
    [args.scheduleId, args.before, args.limit],
  );
}
