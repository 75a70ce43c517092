import { FleetJobsError } from '../protocol/errors.js';
import { isPending } from '../protocol/states.js';
import { deleteExecution, selectExecution } from '../store/executions-admin.js';
import { writeExecutions } from '../store/funnel.js';
import type { ServiceDeps } from './deps.js';

/**
 * DeleteJobExecution (reference §5.5, the model's rule): a terminal execution is deleted; a QUEUED or IN_PROGRESS
 * one only with force (the device then gets notify / notify-next, and ResourceNotFound on its next update).
 */
export async function deleteJobExecution(
  deps: ServiceDeps,
  input: { thingName: string; jobId: string; executionNumber: number; force?: boolean | undefined },
): Promise<void> {
  const now = deps.clock();
  await deps.db.transaction((tx) =>
    writeExecutions(tx, now, {
      lock: [input.thingName],
      read: (tx) => selectExecution(tx, input),
      change: async (_locked, e) => {
        if (!e) {
          throw new FleetJobsError(
            'ResourceNotFound',
            `no execution ${input.executionNumber} of job ${input.jobId} on thing ${input.thingName}`,
          );
        }
        if (isPending(e.status) && !input.force) {
          throw new FleetJobsError(
            'InvalidStateTransition',
            `the execution is ${e.status}; only terminal executions are deleted unless force=true`,
            {
              executionState: {
                status: e.status,
                statusDetails: e.statusDetails,
                versionNumber: e.versionNumber,
              },
            },
          );
        }
        if (!(await deleteExecution(tx, { ...input, status: e.status, versionNumber: e.versionNumber }))) {
          throw new FleetJobsError('Conflict', 'the execution changed meanwhile; retry');
        }
        return {
          changes: [
            {
              jobId: e.jobId,
              thingName: e.thingName,
              executionNumber: e.executionNumber,
              status: e.status,
              previousStatus: e.status,
              deleted: true,
            },
          ],
        };
      },
    }),
  );
  deps.outboxWritten();
}
