import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { cancelExecution, selectExecution } from '../store/executions-admin.js';
import { writeExecutions } from '../store/funnel.js';
import type { ServiceDeps } from './deps.js';

export interface CancelJobExecutionInput {
  thingName: string;
  jobId: string;
  force?: boolean | undefined;
  expectedVersion?: number | undefined;
  statusDetails?: Record<string, string> | undefined;
}

/**
 * CancelJobExecution (reference §3.3, §5.3): the thing's latest execution of the job, QUEUED → CANCELED;
 * IN_PROGRESS only with force; a terminal one is InvalidStateTransition; expectedVersion must match versionNumber
 * (VersionConflictException). statusDetails are merged into the execution's. The thing is locked and the UPDATE
 * guarded by the status and version read, so two concurrent cancels apply once.
 */
export async function cancelJobExecution(deps: ServiceDeps, input: CancelJobExecutionInput): Promise<void> {
  const force = input.force ?? false;
  const now = deps.clock();
  await deps.db.transaction((tx) =>
    writeExecutions(tx, now, {
      lock: [input.thingName],
      read: (tx) => selectExecution(tx, { jobId: input.jobId, thingName: input.thingName }),
      change: async (_locked, e) => {
        if (!e) {
          throw new FleetJobsError(
            'ResourceNotFound',
            `no execution of job ${input.jobId} on thing ${input.thingName}`,
          );
        }
        const state = { status: e.status, statusDetails: e.statusDetails, versionNumber: e.versionNumber };
        if (input.expectedVersion !== undefined && input.expectedVersion !== e.versionNumber) {
          throw new FleetJobsError(
            'VersionMismatch',
            `the execution is at versionNumber ${e.versionNumber}, not expectedVersion ${input.expectedVersion}`,
            { executionState: state },
          );
        }
        if (e.status !== 'QUEUED' && !(e.status === 'IN_PROGRESS' && force)) {
          throw new FleetJobsError(
            'InvalidStateTransition',
            e.status === 'IN_PROGRESS'
              ? `the execution is IN_PROGRESS; cancel it with force=true`
              : `the execution is ${e.status}, a terminal status; it cannot be canceled`,
            { executionState: state },
          );
        }
        let details: Record<string, string> | null = null;
        if (input.statusDetails !== undefined) {
          details = { ...e.statusDetails, ...input.statusDetails };
          if (Object.keys(details).length > LIMITS.MAX_STATUS_DETAILS_PAIRS) {
            throw new FleetJobsError(
              'InvalidRequest',
              `statusDetails would hold more than ${LIMITS.MAX_STATUS_DETAILS_PAIRS} pairs`,
            );
          }
        }
        const updated = await cancelExecution(
          tx,
          {
            jobId: e.jobId,
            thingName: e.thingName,
            executionNumber: e.executionNumber,
            fromStatus: e.status,
            versionNumber: e.versionNumber,
            force,
            statusDetails: details,
          },
          now,
        );
        if (!updated) throw new FleetJobsError('Conflict', 'the execution changed meanwhile; retry');
        return {
          changes: [
            {
              jobId: e.jobId,
              thingName: e.thingName,
              executionNumber: e.executionNumber,
              status: 'CANCELED' as const,
              previousStatus: e.status,
            },
          ],
        };
      },
    }),
  );
  deps.outboxWritten();
}
