import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { parseTarget } from '../protocol/arns.js';
import { insertExecutionsForTargets, insertJob, selectMissingTargets } from '../store/jobs.js';
import { afterExecutionsChanged } from '../store/notifications.js';
import type { JobRow, TargetSelection, TimeoutConfig } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';

export interface CreateJobInput {
  jobId: string;
  targets: string[];
  document?: string;
  documentSource?: string;
  description?: string;
  targetSelection?: TargetSelection;
  timeoutConfig?: TimeoutConfig;
  jobExecutionsRetryConfig?: object;
  jobExecutionsRolloutConfig?: object;
  abortConfig?: object;
  schedulingConfig?: object;
  presignedUrlConfig?: object;
  jobTemplateArn?: string;
  documentParameters?: Record<string, string>;
  namespaceId?: string;
}

export function splitTargets(
  deps: ServiceDeps,
  targets: readonly string[],
): { things: string[]; groups: string[] } {
  const things: string[] = [];
  const groups: string[] = [];
  for (const t of targets) {
    const parsed = parseTarget(t, deps.arn);
    if ('error' in parsed) throw new FleetJobsError('InvalidRequest', parsed.error);
    (parsed.type === 'thing' ? things : groups).push(parsed.name);
  }
  return { things, groups };
}

export function parseDocument(document: string): unknown {
  if (document.length > LIMITS.MAX_JOB_DOCUMENT_CHARS) {
    throw new FleetJobsError(
      'InvalidRequest',
      `document is ${document.length} characters; the limit is ${LIMITS.MAX_JOB_DOCUMENT_CHARS}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    throw new FleetJobsError('InvalidRequest', 'document must be a JSON object in a string');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FleetJobsError('InvalidRequest', 'document must be a JSON object in a string');
  }
  return parsed;
}

function minutesAfter(now: Date, minutes: number | undefined): Date | null {
  return minutes === undefined ? null : new Date(now.getTime() + minutes * 60_000);
}

/**
 * CreateJob: the job row and, for a job that rolls out at once, one QUEUED execution per target thing (groups
 * expanded, duplicates removed), all in one transaction with set-based SQL; notifications go to the outbox in
 * the same transaction.
 */
export async function createJob(deps: ServiceDeps, input: CreateJobInput): Promise<JobRow> {
  if (input.document === undefined) {
    throw new FleetJobsError('InvalidRequest', 'document is required (or a jobTemplateArn that has one)');
  }
  parseDocument(input.document);
  const { things, groups } = splitTargets(deps, input.targets);
  const missing = await selectMissingTargets(deps.db, things, groups);
  if (missing.things.length > 0 || missing.groups.length > 0) {
    const names = [
      ...missing.things.map((n) => `thing/${n}`),
      ...missing.groups.map((n) => `thinggroup/${n}`),
    ];
    throw new FleetJobsError('ResourceNotFound', `targets do not exist: ${names.join(', ')}`);
  }
  const now = deps.clock();
  const job = await deps.db.transaction(async (tx) => {
    const row = await insertJob(
      tx,
      {
        jobId: input.jobId,
        status: 'IN_PROGRESS',
        targetSelection: input.targetSelection ?? 'SNAPSHOT',
        targets: input.targets,
        document: input.document as string,
        documentSource: input.documentSource ?? null,
        description: input.description ?? null,
        jobTemplateArn: input.jobTemplateArn ?? null,
        documentParameters: input.documentParameters ?? null,
        timeoutConfig: input.timeoutConfig ?? null,
        retryConfig: input.jobExecutionsRetryConfig ?? null,
        rolloutConfig: input.jobExecutionsRolloutConfig ?? null,
        abortConfig: input.abortConfig ?? null,
        schedulingConfig: input.schedulingConfig ?? null,
        presignedUrlConfig: input.presignedUrlConfig ?? null,
        namespaceId: input.namespaceId ?? null,
        rolloutPending: false,
      },
      now,
    );
    const changes = await insertExecutionsForTargets(
      tx,
      {
        jobId: input.jobId,
        thingNames: things,
        groupNames: groups,
        queuedDeadline: minutesAfter(now, input.timeoutConfig?.queuedTimeoutInMinutes),
      },
      now,
    );
    await afterExecutionsChanged(tx, changes, now);
    return row;
  });
  deps.outboxWritten();
  return job;
}
