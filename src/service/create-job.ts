import { FleetJobsError } from '../protocol/errors.js';
import { buildArn } from '../protocol/arns.js';
import { insertFirstExecutions, insertJob, lockTargetThings, selectMissingTargets } from '../store/jobs.js';
import { writeExecutions } from '../store/funnel.js';
import { lockThingGroups } from '../store/things.js';
import { validateDocumentParameters } from './parameter-schema.js';
import { resolveJobTemplate } from './job-templates.js';
import type { Queryable } from '../store/db.js';
import type { JobRow, RetryConfig, TargetSelection, TimeoutConfig } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { initialJobState, releaseStep } from './rollout.js';
import { insertRolloutTargets } from '../store/rollout.js';
import {
  checkAbortConfig,
  checkRetryConfig,
  checkRolloutConfig,
  checkSchedulingConfig,
  documentPlaceholders,
  parseDocument,
  parseTargets,
  substituteParameters,
  type DeclaredParameter,
} from './job-validation.js';

export { parseDocument } from './job-validation.js';

export interface CreateJobInput {
  jobId: string;
  targets: string[];
  document?: string;
  documentSource?: string;
  description?: string;
  targetSelection?: TargetSelection;
  timeoutConfig?: TimeoutConfig;
  jobExecutionsRetryConfig?: RetryConfig;
  jobExecutionsRolloutConfig?: Record<string, unknown>;
  abortConfig?: Record<string, unknown>;
  schedulingConfig?: Record<string, unknown>;
  presignedUrlConfig?: Record<string, unknown>;
  jobTemplateArn?: string;
  documentParameters?: Record<string, string>;
  namespaceId?: string;
  /** fleetjobs extension (AWS has none): orders a thing's pending executions, higher first. */
  priority?: number;
  /** fleetjobs extension: the version of jobTemplateArn to use; its latest when omitted. */
  jobTemplateVersion?: number;
}

export function minutesAfter(now: Date, minutes: number | undefined): Date | null {
  return minutes === undefined ? null : new Date(now.getTime() + minutes * 60_000);
}

/** The queued deadline of an execution created now for this job ([protocol §4] queuedTimeoutInMinutes). */
export function queuedDeadlineFor(job: Pick<JobRow, 'timeoutConfig'>, now: Date): Date | null {
  return minutesAfter(now, job.timeoutConfig?.queuedTimeoutInMinutes);
}

/** Throws ResourceNotFound naming every target that does not exist. */
export async function checkTargetsExist(db: Queryable, things: string[], groups: string[]): Promise<void> {
  const missing = await selectMissingTargets(db, things, groups);
  if (missing.things.length > 0 || missing.groups.length > 0) {
    const names = [
      ...missing.things.map((n) => `thing/${n}`),
      ...missing.groups.map((n) => `thinggroup/${n}`),
    ];
    throw new FleetJobsError('ResourceNotFound', `targets do not exist: ${names.join(', ')}`);
  }
}

/**
 * Fan-out: executions for every thing the targets expand to (groups expanded, duplicates removed), by set-based
 * SQL in the caller's transaction. A CONTINUOUS job first takes its groups' row locks exclusively, so a thing
 * joining one of them meanwhile either is expanded here or, once this commits, sees the job and gets its
 * execution (thing-groups.ts). A rollout-managed job (rate, start time, maintenance windows: rollout_pending)
 * records its target things instead and releases what its rate and schedule allow now, notifications included
 * (service/rollout.ts); the rollout worker releases the rest.
 */
async function fanOutJob(
  tx: Queryable,
  job: JobRow,
  targets: { things: string[]; groups: string[] },
  now: Date,
): Promise<void> {
  if (job.targetSelection === 'CONTINUOUS') await lockThingGroups(tx, targets.groups, 'update');
  if (job.rolloutPending) {
    await insertRolloutTargets(tx, job.jobId, { thingNames: targets.things, groupNames: targets.groups });
    if (job.status === 'IN_PROGRESS') await releaseStep(tx, job.jobId, now);
    return;
  }
  await writeExecutions(tx, now, {
    // A job created in this transaction has no executions yet: one statement locks its things, one inserts.
    lock: async (tx) => ({ thingNames: await lockTargetThings(tx, targets.things, targets.groups) }),
    change: async ({ thingNames }) => ({
      changes: await insertFirstExecutions(
        tx,
        { jobId: job.jobId, thingNames, queuedDeadline: queuedDeadlineFor(job, now) },
        now,
      ),
    }),
  });
}

interface PreparedJob {
  document: string;
  targets: { arns: string[]; things: string[]; groups: string[] };
  config: {
    timeoutConfig?: TimeoutConfig | undefined;
    jobExecutionsRetryConfig?: RetryConfig | undefined;
    jobExecutionsRolloutConfig?: Record<string, unknown> | undefined;
    abortConfig?: Record<string, unknown> | undefined;
    presignedUrlConfig?: Record<string, unknown> | undefined;
    priority?: number | undefined;
  };
  jobTemplateArn: string | null;
  jobTemplateVersion: number | null;
  documentSource: string | null;
}

/** Every check that needs no transaction: fields, template merge and parameter substitution, targets. */
async function prepareJob(deps: ServiceDeps, input: CreateJobInput, now: Date): Promise<PreparedJob> {
  const targets = parseTargets(deps, input.targets);
  let document = input.document;
  let documentSource = input.documentSource ?? null;
  let jobTemplateArn: string | null = null;
  let jobTemplateVersion: number | null = null;
  const config: PreparedJob['config'] = {
    timeoutConfig: input.timeoutConfig,
    jobExecutionsRetryConfig: input.jobExecutionsRetryConfig,
    jobExecutionsRolloutConfig: input.jobExecutionsRolloutConfig,
    abortConfig: input.abortConfig,
    presignedUrlConfig: input.presignedUrlConfig,
    priority: input.priority,
  };
  if (input.jobTemplateArn !== undefined) {
    const template = await resolveJobTemplate(deps, input.jobTemplateArn, input.jobTemplateVersion);
    jobTemplateArn = buildArn(deps.arn, 'jobtemplate', template.jobTemplateId);
    jobTemplateVersion = template.versionNumber;
    const schema = template.config.documentParametersSchema as object | undefined;
    if (schema !== undefined) validateDocumentParameters(schema, input.documentParameters ?? {});
    // [DOC job-templates-cli] CreateJob's own fields override the template's.
    for (const key of Object.keys(config) as (keyof PreparedJob['config'])[]) {
      if (config[key] === undefined && template.config[key] !== undefined) {
        (config as Record<string, unknown>)[key] = template.config[key];
      }
    }
    document ??= template.document ?? undefined;
    documentSource ??= template.documentSource;
    const declared = (template.config.documentParameters ?? null) as DeclaredParameter[] | null;
    const params = declared ?? placeholdersAsRequired(template.document ?? '');
    const fromTemplate = input.document === undefined;
    if (
      document !== undefined &&
      (input.documentParameters !== undefined || (fromTemplate && params.length > 0))
    ) {
      document = substituteParameters(document, params, input.documentParameters ?? {});
    }
  } else if (input.jobTemplateVersion !== undefined) {
    throw new FleetJobsError('InvalidRequest', 'jobTemplateVersion needs a jobTemplateArn');
  } else if (input.documentParameters !== undefined) {
    throw new FleetJobsError(
      'InvalidRequest',
      'documentParameters needs a jobTemplateArn whose document uses them',
    );
  }
  if (document === undefined) {
    throw new FleetJobsError(
      'InvalidRequest',
      documentSource !== null
        ? 'documentSource (S3) is not supported: send the document itself in document'
        : 'document is required (or a jobTemplateArn whose template has one)',
    );
  }
  parseDocument(document);
  const timeout = config.timeoutConfig;
  checkRetryConfig(
    config.jobExecutionsRetryConfig,
    timeout?.inProgressTimeoutInMinutes !== undefined || timeout?.queuedTimeoutInMinutes !== undefined,
  );
  checkRolloutConfig(config.jobExecutionsRolloutConfig);
  checkAbortConfig(config.abortConfig);
  checkSchedulingConfig(input.schedulingConfig, now);
  return { document, targets, config, jobTemplateArn, jobTemplateVersion, documentSource };
}

function placeholdersAsRequired(document: string): DeclaredParameter[] {
  return documentPlaceholders(document).map((key) => ({ key }));
}

/**
 * CreateJob: the job row and, for a job that rolls out at once, one QUEUED execution per target thing (groups
 * expanded, duplicates removed), all in one transaction with set-based SQL; notifications go to the outbox in
 * the same transaction.
 */
export async function createJob(
  deps: ServiceDeps,
  input: CreateJobInput,
  options: {
    /** Runs last in the job's transaction (a schedule claims its tick there); a throw rolls the job back. */
    inTransaction?: (tx: Queryable, job: JobRow) => Promise<void>;
  } = {},
): Promise<JobRow> {
  const now = deps.clock();
  const p = await prepareJob(deps, input, now);
  await checkTargetsExist(deps.db, p.targets.things, p.targets.groups);
  const start = initialJobState(
    {
      jobExecutionsRolloutConfig: p.config.jobExecutionsRolloutConfig,
      schedulingConfig: input.schedulingConfig,
    },
    now,
  );
  const job = await deps.db.transaction(async (tx) => {
    const row = await insertJob(
      tx,
      {
        jobId: input.jobId,
        status: start.status,
        targetSelection: input.targetSelection ?? 'SNAPSHOT',
        targets: p.targets.arns,
        document: p.document,
        documentSource: p.documentSource,
        description: input.description ?? null,
        jobTemplateArn: p.jobTemplateArn,
        jobTemplateVersion: p.jobTemplateVersion,
        documentParameters: input.documentParameters ?? null,
        timeoutConfig: p.config.timeoutConfig ?? null,
        retryConfig: p.config.jobExecutionsRetryConfig ?? null,
        rolloutConfig: p.config.jobExecutionsRolloutConfig ?? null,
        abortConfig: p.config.abortConfig ?? null,
        schedulingConfig: input.schedulingConfig ?? null,
        presignedUrlConfig: p.config.presignedUrlConfig ?? null,
        namespaceId: input.namespaceId ?? null,
        priority: p.config.priority ?? null,
        rolloutPending: start.rolloutPending,
      },
      now,
    );
    await fanOutJob(tx, row, p.targets, now);
    await options.inTransaction?.(tx, row);
    return row;
  });
  deps.outboxWritten();
  deps.log.info(
    {
      jobId: job.jobId,
      status: job.status,
      targetSelection: job.targetSelection,
      targets: job.targets.length,
    },
    'job created',
  );
  return job;
}
