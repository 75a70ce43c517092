import type { Queryable } from '../store/db.js';
import { insertExecutionsForThings, selectJob } from '../store/jobs.js';
import { writeExecutions } from '../store/funnel.js';
import { completeJobsIfDone } from '../store/notifications.js';
import {
  finishRollout,
  hasUnreleasedTargets,
  lockJob,
  markTargetsReleased,
  selectRolloutProgress,
  selectThingsWithoutExecution,
  selectUnreleasedTargets,
} from '../store/rollout.js';
import type { ExecutionChange, JobRow } from '../store/rows.js';
import type { JobStatus } from '../protocol/states.js';
import { parseScheduleTime } from './job-validation.js';
import { parseCron } from './cron.js';

/**
 * Rollout ([protocol §4], reference §5.1): when a job's executions are created. A job with a rollout rate, a start
 * time or maintenance windows is rollout-managed: CreateJob records its target things (rollout_targets) and
 * releases what the rate and schedule allow at once; the rollout worker releases the rest, tick by tick.
 */

export interface RolloutConfig {
  maximumPerMinute?: number;
  exponentialRate?: {
    baseRatePerMinute: number;
    incrementFactor: number;
    rateIncreaseCriteria: { numberOfNotifiedThings?: number; numberOfSucceededThings?: number };
  };
}

export interface SchedulingConfig {
  startTime?: string;
  endTime?: string;
  endBehavior?: 'STOP_ROLLOUT' | 'CANCEL' | 'FORCE_CANCEL';
  maintenanceWindows?: { startTime: string; durationInMinutes: number }[];
}

/** AWS's documented default and ceiling of maximumPerMinute, the cap of an exponential rate given alone. */
export const DEFAULT_MAXIMUM_PER_MINUTE = 1000;
/** Executions created per transaction by one release step. */
export const RELEASE_BATCH = 5_000;
const MINUTE = 60_000;

function schedulingOf(job: Pick<JobRow, 'schedulingConfig'>): SchedulingConfig | undefined {
  return (job.schedulingConfig ?? undefined) as SchedulingConfig | undefined;
}

export function startTimeOf(job: Pick<JobRow, 'schedulingConfig'>): Date | undefined {
  const s = schedulingOf(job)?.startTime;
  return s === undefined ? undefined : parseScheduleTime('schedulingConfig.startTime', s);
}

export function endTimeOf(job: Pick<JobRow, 'schedulingConfig'>): Date | undefined {
  const s = schedulingOf(job)?.endTime;
  return s === undefined ? undefined : parseScheduleTime('schedulingConfig.endTime', s);
}

/** Whether executions are created by the rollout worker rather than all at once by CreateJob. */
export function isRolloutManaged(job: Pick<JobRow, 'rolloutConfig' | 'schedulingConfig'>): boolean {
  const s = schedulingOf(job);
  return (
    job.rolloutConfig !== null ||
    s?.startTime !== undefined ||
    (s?.maintenanceWindows !== undefined && s.maintenanceWindows.length > 0)
  );
}

/** The status and rollout flag a new job starts with. */
export function initialJobState(
  config: { jobExecutionsRolloutConfig?: unknown; schedulingConfig?: unknown },
  now: Date,
): { status: JobStatus; rolloutPending: boolean } {
  const probe = {
    rolloutConfig: (config.jobExecutionsRolloutConfig ?? null) as JobRow['rolloutConfig'],
    schedulingConfig: (config.schedulingConfig ?? null) as JobRow['schedulingConfig'],
  };
  const start = startTimeOf(probe);
  return {
    status: start !== undefined && start.getTime() > now.getTime() ? 'SCHEDULED' : 'IN_PROGRESS',
    rolloutPending: isRolloutManaged(probe),
  };
}

/**
 * The rollout rate in executions per minute, or undefined for no limit. exponentialRate starts at
 * baseRatePerMinute and is multiplied by incrementFactor each time another rateIncreaseCriteria quantum of
 * notified (released) or succeeded things is reached, never above maximumPerMinute.
 */
export function ratePerMinute(
  config: RolloutConfig | null,
  progress: { released: number; succeeded: number },
): number | undefined {
  if (config === null) return undefined;
  const exp = config.exponentialRate;
  if (exp === undefined) return config.maximumPerMinute;
  const cap = config.maximumPerMinute ?? DEFAULT_MAXIMUM_PER_MINUTE;
  const c = exp.rateIncreaseCriteria;
  const quantum = c.numberOfNotifiedThings ?? c.numberOfSucceededThings ?? 0;
  const reached = c.numberOfNotifiedThings !== undefined ? progress.released : progress.succeeded;
  const steps = quantum > 0 ? Math.floor(reached / quantum) : 0;
  return Math.max(1, Math.min(cap, Math.floor(exp.baseRatePerMinute * Math.pow(exp.incrementFactor, steps))));
}

/** Whether `now` falls inside one of the maintenance windows (each: a cron start and a duration). */
export function inMaintenanceWindow(
  windows: readonly { startTime: string; durationInMinutes: number }[],
  now: Date,
): boolean {
  return windows.some((w) => {
    const start = parseCron(w.startTime, new Date(now.getTime() + 1000))
      .prev()
      .getTime();
    return now.getTime() >= start && now.getTime() < start + w.durationInMinutes * MINUTE;
  });
}

/** Whether the schedule lets the job release executions now (started, before its end, inside a window). */
export function scheduleAllowsRelease(job: Pick<JobRow, 'schedulingConfig'>, now: Date): boolean {
  const start = startTimeOf(job);
  if (start !== undefined && now.getTime() < start.getTime()) return false;
  const end = endTimeOf(job);
  if (end !== undefined && now.getTime() >= end.getTime()) return false;
  const windows = schedulingOf(job)?.maintenanceWindows ?? [];
  return windows.length === 0 || inMaintenanceWindow(windows, now);
}

function queuedDeadline(job: JobRow, now: Date): Date | null {
  const m = job.timeoutConfig?.queuedTimeoutInMinutes;
  return m === undefined ? null : new Date(now.getTime() + m * MINUTE);
}

/**
 * One release step of an IN_PROGRESS rollout-managed job, in the caller's transaction: creates executions for
 * as many unreleased targets as the rate allows (at most RELEASE_BATCH), marks them released and writes their
 * notifications; ends the rollout (and completes the job if nothing is pending) once every target is released.
 * Lock order: the things to release, then the job row, whose status is checked under the lock, so a job
 * canceled meanwhile gets no new execution. Returns the executions created and whether more may be released
 * now.
 */
export async function releaseStep(
  tx: Queryable,
  jobId: string,
  now: Date,
): Promise<{ changes: ExecutionChange[]; more: boolean }> {
  const progress = await selectRolloutProgress(tx, jobId, new Date(now.getTime() - MINUTE));
  const peek = await selectJob(tx, jobId);
  if (peek === undefined || peek.status !== 'IN_PROGRESS' || !peek.rolloutPending) {
    return { changes: [], more: false };
  }
  if (!scheduleAllowsRelease(peek, now)) return { changes: [], more: false };
  const rate = ratePerMinute(peek.rolloutConfig as RolloutConfig | null, progress);
  const allowed = Math.min(
    RELEASE_BATCH,
    rate === undefined ? RELEASE_BATCH : rate - progress.releasedInWindow,
  );
  if (allowed <= 0) return { changes: [], more: false };
  const names = await selectUnreleasedTargets(tx, jobId, allowed);
  const { changes, rolling } = await writeExecutions(tx, now, {
    lock: names,
    change: async ({ thingNames: locked }) => {
      const job = await lockJob(tx, jobId);
      if (job === undefined || job.status !== 'IN_PROGRESS' || !job.rolloutPending) {
        return { changes: [], rolling: false };
      }
      // A thing deleted since CreateJob cannot be locked: it is released without an execution.
      await markTargetsReleased(tx, jobId, names, now);
      const created = await insertExecutionsForThings(
        tx,
        {
          jobId,
          thingNames: await selectThingsWithoutExecution(tx, jobId, locked),
          queuedDeadline: queuedDeadline(job, now),
        },
        now,
      );
      return { changes: created, rolling: true };
    },
  });
  if (!rolling) return { changes: [], more: false };
  if (!(await hasUnreleasedTargets(tx, jobId))) {
    await finishRollout(tx, jobId, now);
    await completeJobsIfDone(tx, [jobId], now);
    return { changes, more: false };
  }
  return { changes, more: names.length === allowed };
}
