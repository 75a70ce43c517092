/**
 * Rollout worker: looks after jobs that act over time, every tick.
 * - SCHEDULED -> IN_PROGRESS when schedulingConfig.startTime passes.
 * - Rollout: creates QUEUED executions for the job's unreleased targets no faster than
 *   jobExecutionsRolloutConfig allows (maximumPerMinute, exponentialRate) and only inside a maintenance window;
 *   when every target is released the rollout ends (rollout_pending false) and a SNAPSHOT job whose executions
 *   are all terminal becomes COMPLETED.
 * - schedulingConfig.endTime: STOP_ROLLOUT ends the rollout (unreleased targets get no execution); CANCEL cancels
 *   the job (QUEUED executions CANCELED); FORCE_CANCEL cancels it with force (IN_PROGRESS too).
 * - abortConfig: when a criterion trips, the job is CANCELED with a generated reasonCode and comment; QUEUED
 *   executions are CANCELED, IN_PROGRESS ones left alone.
 * - Rollup: completes SNAPSHOT jobs that are done but were not completed by the change that ended their last
 *   execution (two concurrent last changes, see completeJobsIfDone).
 * Each step is a guarded transaction; releases run under an advisory lock, so two instances never release the
 * same minute's quota twice. Each job is supervised on its own: one that fails is logged and the pass goes on.
 */
import type { ServiceDeps } from '../service/deps.js';
import { cancelJob } from '../service/cancel-job.js';
import { endTimeOf, releaseStep, startTimeOf, type SchedulingConfig } from '../service/rollout.js';
import { FleetJobsError } from '../protocol/errors.js';
import { countThingsByStatus, type JobProcessDetails } from '../store/jobs.js';
import { completeJobsIfDone, selectJobsReadyToComplete } from '../store/notifications.js';
import {
  finishRollout,
  finishRolloutOfEndedJobs,
  selectJobsToSupervise,
  startScheduledJob,
} from '../store/rollout.js';
import type { JobRow } from '../store/rows.js';
import type { Queryable } from '../store/db.js';
import { tryWorkerLock, WORKER_LOCKS } from '../store/sweeps.js';
import { createLoop, yieldToEventLoop, type Worker } from './loop.js';

export interface RolloutWorkerOptions {
  tickMs?: number;
  /** Jobs looked at per pass. */
  maxJobs?: number;
}

interface AbortCriterion {
  failureType: 'FAILED' | 'REJECTED' | 'TIMED_OUT' | 'ALL';
  action: 'CANCEL';
  thresholdPercentage: number;
  minNumberOfExecutedThings: number;
}

/**
 * The first abort criterion that trips, with the numbers it tripped on: at least minNumberOfExecutedThings
 * things finished (SUCCEEDED, FAILED, REJECTED, TIMED_OUT as their latest execution), and at least
 * thresholdPercentage of them ended in the failure type (ALL: any of the three failures).
 */
export function trippedAbortCriterion(
  criteria: readonly AbortCriterion[],
  d: JobProcessDetails,
): { criterion: AbortCriterion; executed: number; failures: number } | undefined {
  const executed =
    d.numberOfSucceededThings + d.numberOfFailedThings + d.numberOfRejectedThings + d.numberOfTimedOutThings;
  for (const criterion of criteria) {
    const failures = {
      FAILED: d.numberOfFailedThings,
      REJECTED: d.numberOfRejectedThings,
      TIMED_OUT: d.numberOfTimedOutThings,
      ALL: d.numberOfFailedThings + d.numberOfRejectedThings + d.numberOfTimedOutThings,
    }[criterion.failureType];
    if (
      executed >= criterion.minNumberOfExecutedThings &&
      failures * 100 >= criterion.thresholdPercentage * executed
    ) {
      return { criterion, executed, failures };
    }
  }
  return undefined;
}

export function createRolloutWorker(deps: ServiceDeps, options: RolloutWorkerOptions = {}): Worker {
  const maxJobs = options.maxJobs ?? 1_000;

  /** CancelJob on the worker's behalf; a job that is no longer cancelable was ended by someone else first. */
  const cancel = async (
    jobId: string,
    force: boolean,
    reasonCode: string,
    comment: string,
  ): Promise<number> => {
    try {
      await cancelJob(deps, { jobId, force, reasonCode, comment });
      return 1;
    } catch (err) {
      if (
        err instanceof FleetJobsError &&
        (err.kind === 'InvalidStateTransition' || err.kind === 'ResourceNotFound')
      ) {
        return 0;
      }
      throw err;
    }
  };

  /** A step under the rollout lock; undefined when another instance holds it. */
  const locked = <T>(fn: (tx: Queryable) => Promise<T>): Promise<T | undefined> =>
    deps.db.transaction(async (tx) => ((await tryWorkerLock(tx, WORKER_LOCKS.rollout)) ? fn(tx) : undefined));

  const superviseJob = async (job: JobRow, now: Date): Promise<number> => {
    let changed = 0;
    const start = startTimeOf(job);
    if (job.status === 'SCHEDULED') {
      if (start === undefined || now.getTime() < start.getTime()) return 0;
      if (await locked((tx) => startScheduledJob(tx, job.jobId, now))) changed++;
    }
    const end = endTimeOf(job);
    if (end !== undefined && now.getTime() >= end.getTime()) {
      const behavior = (job.schedulingConfig as SchedulingConfig).endBehavior ?? 'STOP_ROLLOUT';
      if (behavior === 'STOP_ROLLOUT') {
        const stopped = await locked(async (tx) => {
          const done = await finishRollout(tx, job.jobId, now);
          if (done) await completeJobsIfDone(tx, [job.jobId], now);
          return done;
        });
        return changed + (stopped ? 1 : 0);
      }
      const comment = `schedulingConfig.endTime ${end.toISOString()} reached (endBehavior ${behavior})`;
      return (
        changed +
        (await cancel(job.jobId, behavior === 'FORCE_CANCEL', 'SCHEDULED_END_TIME_REACHED', comment))
      );
    }
    const criteria = (job.abortConfig?.criteriaList ?? []) as AbortCriterion[];
    if (criteria.length > 0) {
      const tripped = trippedAbortCriterion(criteria, await countThingsByStatus(deps.db, job.jobId));
      if (tripped) {
        const { criterion, executed, failures } = tripped;
        const type = criterion.failureType;
        const comment =
          `abortConfig: ${failures} of ${executed} executed things ended ${type === 'ALL' ? 'FAILED, REJECTED or TIMED_OUT' : type}` +
          ` (${((failures * 100) / executed).toFixed(2)}% >= ${criterion.thresholdPercentage}%, minimum ${criterion.minNumberOfExecutedThings} things)`;
        return changed + (await cancel(job.jobId, false, `ABORT_CRITERIA_MET_${type}`, comment));
      }
    }
    for (;;) {
      const step = await locked((tx) => releaseStep(tx, job.jobId, now));
      if (step === undefined) return changed;
      changed += step.changes.length;
      if (step.changes.length > 0) deps.outboxWritten();
      if (!step.more) return changed;
      await yieldToEventLoop();
    }
  };

  return createLoop({
    name: 'rollout',
    tickMs: options.tickMs ?? 1000,
    log: deps.log,
    clock: deps.clock,
    async pass(now) {
      let changed = await finishRolloutOfEndedJobs(deps.db, now);
      const ready = await selectJobsReadyToComplete(deps.db, maxJobs);
      if (ready.length > 0) {
        // One statement: it commits on its own.
        const completed = await completeJobsIfDone(deps.db, ready, now);
        changed += completed.length;
        if (completed.length > 0) deps.outboxWritten();
      }
      for (const job of await selectJobsToSupervise(deps.db, maxJobs)) {
        // One job that cannot be supervised (a stored configuration that no longer reads) must not stall the
        // others: it is logged and tried again on the next pass.
        try {
          changed += await superviseJob(job, now);
        } catch (err) {
          deps.log.error({ err, jobId: job.jobId }, 'rollout of a job failed; the other jobs go on');
        }
      }
      return changed;
    },
  });
}
