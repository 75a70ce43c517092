import { FleetJobsError } from '../protocol/errors.js';
import { deleteJobRow } from '../store/jobs.js';
import { deleteExecutionsOfJob } from '../store/executions-admin.js';
import { writeExecutions } from '../store/funnel.js';
import { insertJobEvents } from '../store/events.js';
import type { ServiceDeps } from './deps.js';
import { lockJobAndItsThings } from './cancel-job.js';

/**
 * DeleteJob (reference §5.4): only COMPLETED or CANCELED jobs unless force. The job and every execution are
 * deleted in one transaction (AWS does it asynchronously through DELETION_IN_PROGRESS; here it is done when the
 * call returns); things that had a pending execution get notify / notify-next.
 */
export async function deleteJob(
  deps: ServiceDeps,
  input: { jobId: string; force?: boolean | undefined },
): Promise<void> {
  const now = deps.clock();
  await deps.db.transaction((tx) =>
    writeExecutions(tx, now, {
      lock: (tx) => lockJobAndItsThings(tx, input.jobId, ['QUEUED', 'IN_PROGRESS']),
      change: async ({ job }) => {
        if (!job) throw new FleetJobsError('ResourceNotFound', `job ${input.jobId} does not exist`);
        if (job.status === 'DELETION_IN_PROGRESS') {
          throw new FleetJobsError('InvalidStateTransition', `job ${input.jobId} is already being deleted`);
        }
        if (!input.force && job.status !== 'COMPLETED' && job.status !== 'CANCELED') {
          throw new FleetJobsError(
            'InvalidStateTransition',
            `job ${input.jobId} is ${job.status}; cancel it first or delete it with force=true`,
          );
        }
        const changes = await deleteExecutionsOfJob(tx, input.jobId);
        // [protocol §6] $aws/events/job/{jobId}/deleted, written while the job row still exists.
        await insertJobEvents(tx, [input.jobId], 'deleted', now);
        if (!(await deleteJobRow(tx, input.jobId, job.version))) {
          throw new FleetJobsError('Conflict', `job ${input.jobId} changed meanwhile; retry`);
        }
        return { changes };
      },
    }),
  );
  deps.outboxWritten();
}
