import { FleetJobsError } from '../protocol/errors.js';
import { selectJob, updateJobConfig } from '../store/jobs.js';
import type { RetryConfig, TimeoutConfig } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { checkAbortConfig, checkRetryConfig, checkRolloutConfig } from './job-validation.js';

export interface UpdateJobInput {
  jobId: string;
  description?: string | undefined;
  presignedUrlConfig?: Record<string, unknown> | undefined;
  jobExecutionsRolloutConfig?: Record<string, unknown> | undefined;
  abortConfig?: Record<string, unknown> | undefined;
  timeoutConfig?: TimeoutConfig | undefined;
  jobExecutionsRetryConfig?: RetryConfig | undefined;
}

/**
 * UpdateJob (reference §5.9): replaces the given configuration fields. A new timeoutConfig applies to executions
 * that are queued or start from now on; timers already running keep their deadlines.
 */
export async function updateJob(deps: ServiceDeps, input: UpdateJobInput): Promise<void> {
  checkRolloutConfig(input.jobExecutionsRolloutConfig);
  checkAbortConfig(input.abortConfig);
  const now = deps.clock();
  await deps.db.transaction(async (tx) => {
    const job = await selectJob(tx, input.jobId, { forUpdate: true });
    if (!job) throw new FleetJobsError('ResourceNotFound', `job ${input.jobId} does not exist`);
    if (job.status === 'DELETION_IN_PROGRESS') {
      throw new FleetJobsError('InvalidStateTransition', `job ${input.jobId} is being deleted`);
    }
    const timeout = input.timeoutConfig ?? job.timeoutConfig ?? undefined;
    checkRetryConfig(
      input.jobExecutionsRetryConfig,
      timeout?.inProgressTimeoutInMinutes !== undefined || timeout?.queuedTimeoutInMinutes !== undefined,
    );
    const updated = await updateJobConfig(
      tx,
      {
        jobId: input.jobId,
        version: job.version,
        patch: {
          description: input.description,
          presignedUrlConfig: input.presignedUrlConfig,
          rolloutConfig: input.jobExecutionsRolloutConfig,
          abortConfig: input.abortConfig,
          timeoutConfig: input.timeoutConfig,
          retryConfig: input.jobExecutionsRetryConfig,
        },
      },
      now,
    );
    if (!updated) throw new FleetJobsError('Conflict', `job ${input.jobId} changed meanwhile; retry`);
  });
}
