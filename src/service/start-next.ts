import { FleetJobsError } from '../protocol/errors.js';
import {
  selectHeadExecution,
  updateExecutionByDevice,
  type ExecutionWithDocument,
} from '../store/executions.js';
import { afterExecutionsChanged, lockThings } from '../store/notifications.js';
import type { ServiceDeps } from './deps.js';

export interface StartNextInput {
  statusDetails?: Record<string, string> | undefined;
  stepTimeoutInMinutes?: number | undefined;
}

/**
 * StartNextPendingJobExecution: under the thing's lock, picks the head; a QUEUED head becomes IN_PROGRESS
 * (startedAt, version + 1, statusDetails if given, step timer), an IN_PROGRESS head is returned unchanged.
 * Undefined when nothing is pending. Two concurrent calls for one thing serialize on the lock, so they can
 * never start two different heads.
 */
export async function startNext(
  deps: ServiceDeps,
  thingName: string,
  input: StartNextInput,
): Promise<ExecutionWithDocument | undefined> {
  const now = deps.clock();
  let changed = false;
  const result = await deps.db.transaction(async (tx) => {
    changed = false;
    await lockThings(tx, [thingName]);
    const head = await selectHeadExecution(tx, thingName);
    if (head === undefined || head.status !== 'QUEUED') return head;
    const claimed = await updateExecutionByDevice(
      tx,
      {
        thingName,
        jobId: head.jobId,
        executionNumber: head.executionNumber,
        fromStatuses: ['QUEUED'],
        expectedVersion: head.versionNumber,
        status: 'IN_PROGRESS',
        statusDetails: input.statusDetails,
        stepTimeoutInMinutes: input.stepTimeoutInMinutes,
      },
      now,
    );
    // The thing lock makes the guard hold; a miss means a writer that skipped the lock.
    if (claimed === undefined) throw new FleetJobsError('Internal', 'the head changed while it was claimed');
    await afterExecutionsChanged(
      tx,
      [
        {
          jobId: claimed.jobId,
          thingName,
          executionNumber: claimed.executionNumber,
          status: 'IN_PROGRESS',
          previousStatus: 'QUEUED',
        },
      ],
      now,
    );
    changed = true;
    return claimed;
  });
  if (changed) deps.outboxWritten();
  return result;
}
