import { FleetJobsError } from '../protocol/errors.js';
import { deviceTransition, isDeviceSettable, PENDING_STATUSES } from '../protocol/states.js';
import { selectExecution, updateExecutionByDevice, type ExecutionWithDocument } from '../store/executions.js';
import { afterExecutionsChanged, lockThings } from '../store/notifications.js';
import type { ServiceDeps } from './deps.js';

export interface UpdateExecutionInput {
  thingName: string;
  jobId: string;
  status: string;
  statusDetails?: Record<string, string> | undefined;
  expectedVersion?: number | undefined;
  executionNumber?: number | undefined;
  /** 1..10080 minutes, or -1 to clear the step timer. */
  stepTimeoutInMinutes?: number | undefined;
}

function stateOf(row: ExecutionWithDocument) {
  return { status: row.status, statusDetails: row.statusDetails, versionNumber: row.versionNumber };
}

/**
 * UpdateJobExecution: under the thing's lock, checks the device transition and expectedVersion against the
 * current execution, then applies a guarded UPDATE and writes the notifications its change causes.
 * Returns the execution as it is after the change.
 */
export async function updateExecution(
  deps: ServiceDeps,
  input: UpdateExecutionInput,
): Promise<ExecutionWithDocument> {
  if (!isDeviceSettable(input.status)) {
    const verdict = deviceTransition('QUEUED', input.status);
    throw new FleetJobsError('InvalidRequest', verdict.ok ? undefined : verdict.message);
  }
  const status = input.status;
  const now = deps.clock();
  const row = await deps.db.transaction(async (tx) => {
    await lockThings(tx, [input.thingName]);
    const current = await selectExecution(tx, input);
    if (current === undefined) {
      const which =
        input.executionNumber === undefined ? '' : ` with executionNumber ${input.executionNumber}`;
      throw new FleetJobsError(
        'ResourceNotFound',
        `no execution of job ${input.jobId} on thing ${input.thingName}${which}`,
      );
    }
    const verdict = deviceTransition(current.status, status);
    if (!verdict.ok) {
      throw new FleetJobsError(verdict.code, verdict.message, { executionState: stateOf(current) });
    }
    if (input.expectedVersion !== undefined && input.expectedVersion !== current.versionNumber) {
      throw new FleetJobsError(
        'VersionMismatch',
        `expectedVersion ${input.expectedVersion} does not match versionNumber ${current.versionNumber}`,
        { executionState: stateOf(current) },
      );
    }
    const updated = await updateExecutionByDevice(
      tx,
      {
        thingName: input.thingName,
        jobId: input.jobId,
        executionNumber: current.executionNumber,
        fromStatuses: PENDING_STATUSES,
        expectedVersion: current.versionNumber,
        status,
        statusDetails: input.statusDetails,
        stepTimeoutInMinutes: input.stepTimeoutInMinutes,
      },
      now,
    );
    if (updated === undefined)
      throw new FleetJobsError('Internal', 'the execution changed while it was updated');
    await afterExecutionsChanged(
      tx,
      [
        {
          jobId: input.jobId,
          thingName: input.thingName,
          executionNumber: updated.executionNumber,
          status,
          previousStatus: current.status,
        },
      ],
      now,
    );
    return updated;
  });
  deps.outboxWritten();
  return row;
}
