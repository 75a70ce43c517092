import { FleetJobsError } from '../protocol/errors.js';
import type { ExecutionStatus } from '../protocol/states.js';
import { selectJob, updateJobCanceled } from '../store/jobs.js';
import { cancelExecutionsOfJob, selectThingNamesOfJob } from '../store/executions-admin.js';
import { writeExecutions } from '../store/funnel.js';
import { lockThings } from '../store/things.js';
import { insertJobEvents } from '../store/events.js';
import type { Queryable } from '../store/db.js';
import type { JobRow } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';

/**
 * Locks the things with an execution of the job in one of the statuses, then the job row; things whose execution
 * entered those statuses in between (a retry, a thing that joined a CONTINUOUS group, both of which hold the job
 * row while they insert) are locked after. Returns the locked thing names and the job as locked.
 * Lock order: things, then the job (as every execution change: things, executions, jobs).
 */
export async function lockJobAndItsThings(
  tx: Queryable,
  jobId: string,
  statuses: readonly ExecutionStatus[],
): Promise<{ job: JobRow | undefined; thingNames: string[] }> {
  const locked = new Set(await lockThings(tx, await selectThingNamesOfJob(tx, jobId, statuses)));
  const job = await selectJob(tx, jobId, { forUpdate: true });
  if (job) {
    const extra = (await selectThingNamesOfJob(tx, jobId, statuses)).filter((n) => !locked.has(n));
    for (const n of await lockThings(tx, extra)) locked.add(n);
  }
  return { job, thingNames: [...locked].sort() };
}

export interface CancelJobInput {
  jobId: string;
  force?: boolean | undefined;
  reasonCode?: string | undefined;
  comment?: string | undefined;
}

/**
 * CancelJob ([protocol §4], reference §3.3): the job becomes CANCELED and its QUEUED executions CANCELED; with force,
 * IN_PROGRESS ones too (forceCanceled). A CANCELED job may be canceled again with force only, to cancel the
 * executions a plain cancel left running; otherwise, and for COMPLETED or DELETION_IN_PROGRESS jobs, it is
 * InvalidStateTransition. One transaction: of two concurrent cancels, the second sees the first's result.
 */
export async function cancelJob(deps: ServiceDeps, input: CancelJobInput): Promise<JobRow> {
  const force = input.force ?? false;
  const fromExecution: ExecutionStatus[] = force ? ['QUEUED', 'IN_PROGRESS'] : ['QUEUED'];
  const now = deps.clock();
  const job = await deps.db.transaction(async (tx) => {
    const { updated } = await writeExecutions(tx, now, {
      lock: (tx) => lockJobAndItsThings(tx, input.jobId, fromExecution),
      change: async ({ job, thingNames }) => {
        if (!job) throw new FleetJobsError('ResourceNotFound', `job ${input.jobId} does not exist`);
        const upgrade = job.status === 'CANCELED' && force && !job.forceCanceled;
        if (job.status !== 'IN_PROGRESS' && job.status !== 'SCHEDULED' && !upgrade) {
          throw new FleetJobsError(
            'InvalidStateTransition',
            job.status === 'CANCELED'
              ? `job ${input.jobId} is already CANCELED${job.forceCanceled ? ' with force' : '; cancel with force=true to cancel its IN_PROGRESS executions'}`
              : `job ${input.jobId} is ${job.status}; only IN_PROGRESS and SCHEDULED jobs can be canceled`,
          );
        }
        const updated = await updateJobCanceled(
          tx,
          {
            jobId: input.jobId,
            fromStatuses: [job.status],
            version: job.version,
            force,
            reasonCode: input.reasonCode ?? null,
            comment: input.comment ?? null,
          },
          now,
        );
        if (!updated) throw new FleetJobsError('Conflict', `job ${input.jobId} changed meanwhile; retry`);
        const changes = [];
        for (const fromStatus of fromExecution) {
          changes.push(
            ...(await cancelExecutionsOfJob(tx, { jobId: input.jobId, thingNames, fromStatus, force }, now)),
          );
        }
        return { changes, updated };
      },
    });
    // [protocol §6] $aws/events/job/{jobId}/canceled, after the executions' own canceled events.
    await insertJobEvents(tx, [input.jobId], 'canceled', now);
    return updated;
  });
  deps.outboxWritten();
  return job;
}
