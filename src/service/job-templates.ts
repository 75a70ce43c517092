import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { buildArn } from '../protocol/arns.js';
import { selectJob } from '../store/jobs.js';
import {
  deleteJobTemplateRow,
  insertJobTemplate,
  selectJobTemplate,
  selectJobTemplatesPage,
} from '../store/templates.js';
import type { RetryConfig, TimeoutConfig } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import {
  checkAbortConfig,
  checkCron,
  checkRetryConfig,
  checkRolloutConfig,
  documentPlaceholders,
  parseDocument,
  type DeclaredParameter,
} from './job-validation.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { jobTemplateSummaryView, jobTemplateView } from './views.js';

export interface CreateJobTemplateInput {
  jobTemplateId: string;
  description: string;
  document?: string | undefined;
  documentSource?: string | undefined;
  jobArn?: string | undefined;
  presignedUrlConfig?: Record<string, unknown> | undefined;
  jobExecutionsRolloutConfig?: Record<string, unknown> | undefined;
  abortConfig?: Record<string, unknown> | undefined;
  timeoutConfig?: TimeoutConfig | undefined;
  jobExecutionsRetryConfig?: RetryConfig | undefined;
  maintenanceWindows?: { startTime: string; durationInMinutes: number }[] | undefined;
  destinationPackageVersions?: string[] | undefined;
  /** fleetjobs extension, the shape of AWS managed templates: the parameters CreateJob's documentParameters fill. */
  documentParameters?: DeclaredParameter[] | undefined;
  /** fleetjobs extension: the priority of jobs created from the template (CreateJob's own wins). */
  priority?: number | undefined;
}

const CONFIG_KEYS = [
  'presignedUrlConfig',
  'jobExecutionsRolloutConfig',
  'abortConfig',
  'timeoutConfig',
  'jobExecutionsRetryConfig',
  'maintenanceWindows',
  'destinationPackageVersions',
  'documentParameters',
  'priority',
] as const;

/**
 * CreateJobTemplate (reference §5.11): a description plus one of document, documentSource or jobArn (an existing
 * job whose document and configuration are copied), and the configuration CreateJob takes from it.
 */
export async function createJobTemplate(deps: ServiceDeps, input: CreateJobTemplateInput) {
  const sources = [input.document, input.documentSource, input.jobArn].filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new FleetJobsError(
      'InvalidRequest',
      'a job template needs exactly one of document, documentSource, jobArn',
    );
  }
  const config: Record<string, unknown> = {};
  let document = input.document ?? null;
  if (input.jobArn !== undefined) {
    const m = /^(?:arn:aws:iot:[a-z0-9-]*:\d*:job\/)?([a-zA-Z0-9_-]{1,64})$/.exec(input.jobArn);
    const job = m?.[1] ? await selectJob(deps.db, m[1]) : undefined;
    if (!job) throw new FleetJobsError('ResourceNotFound', `job ${input.jobArn} does not exist`);
    document = job.document;
    Object.assign(
      config,
      Object.fromEntries(
        Object.entries({
          presignedUrlConfig: job.presignedUrlConfig,
          jobExecutionsRolloutConfig: job.rolloutConfig,
          abortConfig: job.abortConfig,
          timeoutConfig: job.timeoutConfig,
          jobExecutionsRetryConfig: job.retryConfig,
        }).filter(([, v]) => v !== null),
      ),
    );
  }
  for (const key of CONFIG_KEYS) if (input[key] !== undefined) config[key] = input[key];
  if (document === null) {
    throw new FleetJobsError(
      'InvalidRequest',
      'documentSource (S3) is not supported: send the document itself in document',
    );
  }
  parseDocument(document);
  const placeholders = [...document.matchAll(/\$\{aws:iot:parameter:[a-zA-Z0-9_-]+\}/g)].length;
  if (placeholders > LIMITS.MAX_SUBSTITUTIONS_PER_DOCUMENT) {
    throw new FleetJobsError(
      'InvalidRequest',
      `the document has ${placeholders} substitution placeholders; the limit is ${LIMITS.MAX_SUBSTITUTIONS_PER_DOCUMENT}`,
    );
  }
  if (input.documentParameters !== undefined) {
    const keys = new Set<string>();
    for (const p of input.documentParameters) {
      if (keys.has(p.key))
        throw new FleetJobsError('InvalidRequest', `documentParameters declares ${p.key} twice`);
      keys.add(p.key);
      if (p.regex !== undefined) {
        try {
          new RegExp(p.regex, 'u');
        } catch {
          throw new FleetJobsError(
            'InvalidRequest',
            `documentParameters.${p.key}.regex is not a regular expression`,
          );
        }
      }
    }
    const undeclared = documentPlaceholders(document).filter((k) => !keys.has(k));
    if (undeclared.length > 0) {
      throw new FleetJobsError(
        'InvalidRequest',
        `the document uses parameters that documentParameters does not declare: ${undeclared.join(', ')}`,
      );
    }
  }
  const timeout = config.timeoutConfig as TimeoutConfig | undefined;
  checkRetryConfig(
    config.jobExecutionsRetryConfig as RetryConfig | undefined,
    timeout?.inProgressTimeoutInMinutes !== undefined || timeout?.queuedTimeoutInMinutes !== undefined,
  );
  checkRolloutConfig(config.jobExecutionsRolloutConfig as Record<string, unknown> | undefined);
  checkAbortConfig(config.abortConfig as Record<string, unknown> | undefined);
  input.maintenanceWindows?.forEach((w, i) =>
    checkCron(`maintenanceWindows[${i}].startTime`, w.startTime, deps.clock()),
  );
  const row = await insertJobTemplate(
    deps.db,
    {
      jobTemplateId: input.jobTemplateId,
      description: input.description,
      document,
      documentSource: input.documentSource ?? null,
      config,
    },
    deps.clock(),
  );
  return {
    jobTemplateArn: buildArn(deps.arn, 'jobtemplate', row.jobTemplateId),
    jobTemplateId: row.jobTemplateId,
  };
}

export async function describeJobTemplate(deps: ServiceDeps, jobTemplateId: string) {
  const row = await selectJobTemplate(deps.db, jobTemplateId);
  if (!row) throw new FleetJobsError('ResourceNotFound', `job template ${jobTemplateId} does not exist`);
  return jobTemplateView(deps.arn, row);
}

export async function listJobTemplates(deps: ServiceDeps, q: { maxResults?: number; nextToken?: string }) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('job-templates', q.nextToken, ['string']);
  const rows = await selectJobTemplatesPage(deps.db, {
    after: (after?.[0] as string | undefined) ?? null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'job-templates', (t) => [t.jobTemplateId]);
  return {
    jobTemplates: p.items.map((t) => jobTemplateSummaryView(deps.arn, t)),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

export async function deleteJobTemplate(deps: ServiceDeps, jobTemplateId: string): Promise<void> {
  if (!(await deleteJobTemplateRow(deps.db, jobTemplateId))) {
    throw new FleetJobsError('ResourceNotFound', `job template ${jobTemplateId} does not exist`);
  }
}
