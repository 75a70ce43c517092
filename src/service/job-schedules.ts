import { FleetJobsError } from '../protocol/errors.js';
import { buildArn } from '../protocol/arns.js';
import {
  claimScheduleTick,
  deleteScheduleRow,
  hasActiveRun,
  selectSchedule,
  selectScheduleRunsPage,
  selectSchedulesPage,
  setScheduleState,
  upsertSchedule,
  type ConcurrencyPolicy,
  type RunOutcome,
  type ScheduleRow,
  type ScheduleState,
} from '../store/schedules.js';
import { createJob } from './create-job.js';
import type { ServiceDeps } from './deps.js';
import { parseTargets } from './job-validation.js';
import { resolveJobTemplate } from './job-templates.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { parseScheduleExpression, tickJobId } from './schedule-expression.js';
import { awsTime, compact } from './views.js';

export interface PutJobScheduleInput {
  scheduleId: string;
  description?: string | undefined;
  scheduleExpression: string;
  scheduleExpressionTimezone?: string | undefined;
  jobTemplateArn: string;
  jobTemplateVersion?: number | undefined;
  targets: string[];
  documentParameters?: Record<string, string> | undefined;
  concurrencyPolicy?: ConcurrencyPolicy | undefined;
  state?: ScheduleState | undefined;
}

function scheduleView(deps: ServiceDeps, s: ScheduleRow) {
  return compact({
    scheduleId: s.scheduleId,
    description: s.description,
    scheduleExpression: s.scheduleExpression,
    scheduleExpressionTimezone: s.timezone,
    jobTemplateArn: buildArn(deps.arn, 'jobtemplate', s.jobTemplateId),
    jobTemplateVersion: s.jobTemplateVersion,
    targets: s.targets,
    documentParameters: s.documentParameters,
    concurrencyPolicy: s.concurrencyPolicy,
    state: s.state,
    nextRunAt: awsTime(s.nextRunAt),
    version: s.version,
    createdAt: awsTime(s.createdAt),
    lastUpdatedAt: awsTime(s.lastUpdatedAt),
  });
}

function notFound(scheduleId: string): never {
  throw new FleetJobsError('ResourceNotFound', `job schedule ${scheduleId} does not exist`);
}

/**
 * PutJobSchedule (fleetjobs extension): creates a recurring job, or replaces one. The expression, timezone,
 * targets and template (and version) are checked now; the next tick is computed from now, so ticks before a
 * replacement are never created.
 */
export async function putJobSchedule(deps: ServiceDeps, input: PutJobScheduleInput) {
  const timezone = input.scheduleExpressionTimezone ?? 'UTC';
  const expression = parseScheduleExpression(input.scheduleExpression, timezone);
  const targets = parseTargets(deps, input.targets);
  const template = await resolveJobTemplate(deps, input.jobTemplateArn, input.jobTemplateVersion);
  const now = deps.clock();
  const state = input.state ?? 'ENABLED';
  const row = await upsertSchedule(
    deps.db,
    {
      scheduleId: input.scheduleId,
      description: input.description ?? null,
      scheduleExpression: input.scheduleExpression,
      timezone,
      jobTemplateId: template.jobTemplateId,
      jobTemplateVersion: input.jobTemplateVersion ?? null,
      targets: targets.arns,
      documentParameters: input.documentParameters ?? null,
      concurrencyPolicy: input.concurrencyPolicy ?? 'SKIP',
      state,
      nextRunAt: state === 'ENABLED' ? expression.nextAfter(now) : null,
    },
    now,
  );
  return scheduleView(deps, row);
}

export async function describeJobSchedule(deps: ServiceDeps, scheduleId: string) {
  const row = await selectSchedule(deps.db, scheduleId);
  if (!row) notFound(scheduleId);
  return scheduleView(deps, row);
}

export async function listJobSchedules(deps: ServiceDeps, q: { maxResults?: number; nextToken?: string }) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('job-schedules', q.nextToken, ['string']);
  const rows = await selectSchedulesPage(deps.db, {
    after: (after?.[0] as string | undefined) ?? null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'job-schedules', (s) => [s.scheduleId]);
  return {
    schedules: p.items.map((s) => scheduleView(deps, s)),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

/** DeleteJobSchedule: the schedule and its run history; the jobs it created stay. */
export async function deleteJobSchedule(deps: ServiceDeps, scheduleId: string): Promise<void> {
  if (!(await deleteScheduleRow(deps.db, scheduleId))) notFound(scheduleId);
}

/**
 * Pause stops ticks; resume restarts them from the next tick after now (ticks that fell while paused are not
 * created). Pausing a PAUSED schedule, or resuming an ENABLED one, is InvalidStateTransition.
 */
export async function setJobScheduleState(deps: ServiceDeps, scheduleId: string, state: ScheduleState) {
  const current = await selectSchedule(deps.db, scheduleId);
  if (!current) notFound(scheduleId);
  const now = deps.clock();
  const nextRunAt =
    state === 'ENABLED'
      ? parseScheduleExpression(current.scheduleExpression, current.timezone).nextAfter(now)
      : null;
  const row = await setScheduleState(deps.db, { scheduleId, state, nextRunAt }, now);
  if (!row) {
    throw new FleetJobsError(
      'InvalidStateTransition',
      `job schedule ${scheduleId} is ${state === 'ENABLED' ? 'not paused' : 'already paused'}`,
    );
  }
  return scheduleView(deps, row);
}

export async function listJobScheduleRuns(
  deps: ServiceDeps,
  scheduleId: string,
  q: { maxResults?: number; nextToken?: string },
) {
  const limit = pageLimit(q.maxResults);
  const before = decodeToken('job-schedule-runs', q.nextToken, ['number']);
  if (before === null && !(await selectSchedule(deps.db, scheduleId))) notFound(scheduleId);
  const rows = await selectScheduleRunsPage(deps.db, {
    scheduleId,
    before: before ? new Date(before[0] as number) : null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'job-schedule-runs', (r) => [r.scheduledAt.getTime()]);
  return {
    runs: p.items.map((r) =>
      compact({
        scheduledAt: awsTime(r.scheduledAt),
        jobId: r.jobId,
        outcome: r.outcome,
        reason: r.reason,
        jobStatus: r.jobStatus,
        createdAt: awsTime(r.createdAt),
      }),
    ),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

/** Thrown inside the job's transaction when another instance claimed the tick first: rolls the job back. */
class TickTaken extends Error {}

/**
 * One due schedule at `now`: its latest tick at or before now (one job however many ticks were missed while
 * no instance ran), created from the template through CreateJob in the transaction that advances next_run_at,
 * so a tick is created once across instances and restarts. Under SKIP, a tick whose previous run is still
 * active is recorded SKIPPED; a tick CreateJob refuses is recorded FAILED with the reason. Returns 1 when this
 * call handled the tick.
 */
export async function runScheduleTick(deps: ServiceDeps, s: ScheduleRow, now: Date): Promise<number> {
  if (s.nextRunAt === null) return 0;
  const expression = parseScheduleExpression(s.scheduleExpression, s.timezone);
  const latest = expression.latestAtOrBefore(now);
  const scheduledAt = latest.getTime() < s.nextRunAt.getTime() ? s.nextRunAt : latest;
  const claim = (outcome: RunOutcome, reason: string | null) => ({
    scheduleId: s.scheduleId,
    expectedNextRunAt: s.nextRunAt as Date,
    nextRunAt: expression.nextAfter(now),
    scheduledAt,
    jobId: tickJobId(s.scheduleId, scheduledAt),
    outcome,
    reason,
  });
  const record = async (outcome: RunOutcome, reason: string | null) =>
    (await deps.db.transaction((tx) => claimScheduleTick(tx, claim(outcome, reason), now))) ? 1 : 0;

  if (s.concurrencyPolicy === 'SKIP' && (await hasActiveRun(deps.db, s.scheduleId))) {
    return record('SKIPPED', 'the previous run is still active (concurrencyPolicy SKIP)');
  }
  try {
    await createJob(
      deps,
      {
        jobId: claim('CREATED', null).jobId,
        targets: s.targets,
        jobTemplateArn: buildArn(deps.arn, 'jobtemplate', s.jobTemplateId),
        ...(s.jobTemplateVersion !== null ? { jobTemplateVersion: s.jobTemplateVersion } : {}),
        ...(s.documentParameters !== null ? { documentParameters: s.documentParameters } : {}),
      },
      {
        inTransaction: async (tx) => {
          if (!(await claimScheduleTick(tx, claim('CREATED', null), now))) throw new TickTaken();
        },
      },
    );
    return 1;
  } catch (err) {
    if (err instanceof TickTaken) return 0;
    // ResourceAlreadyExists: another instance created the tick's job (then this claim finds the tick taken and
    // records nothing), or an operator took the id; either way the schedule moves on.
    if (
      err instanceof FleetJobsError &&
      (err.kind === 'InvalidRequest' ||
        err.kind === 'ResourceNotFound' ||
        err.kind === 'ResourceAlreadyExists')
    ) {
      deps.log.warn({ scheduleId: s.scheduleId, err: err.message }, 'scheduled job not created');
      return record('FAILED', err.message);
    }
    throw err;
  }
}
