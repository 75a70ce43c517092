import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { buildArn, parseJobTemplateArn } from '../protocol/arns.js';
import { selectJob } from '../store/jobs.js';
import {
  deleteJobTemplateRow,
  insertJobTemplate,
  insertNextJobTemplateVersion,
  selectJobTemplate,
  selectJobTemplatesPage,
  selectJobTemplateVersion,
  selectJobTemplateVersionsPage,
  type JobTemplateRow,
  type TemplateContent,
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
import { checkParametersSchema } from './parameter-schema.js';
import { awsTime, jobTemplateSummaryView, jobTemplateView } from './views.js';

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
  /** fleetjobs extension: a JSON Schema CreateJob's documentParameters must satisfy. */
  documentParametersSchema?: Record<string, unknown> | undefined;
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
  'documentParametersSchema',
] as const;

/** The content a template version stores, checked: document, configuration, parameters and their schema. */
async function prepareTemplate(
  deps: ServiceDeps,
  input: Omit<CreateJobTemplateInput, 'jobTemplateId'>,
): Promise<TemplateContent> {
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
  checkParametersSchema(input.documentParametersSchema);
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
  return { description: input.description, document, documentSource: input.documentSource ?? null, config };
}

function templateRef(deps: ServiceDeps, row: JobTemplateRow) {
  return {
    jobTemplateArn: buildArn(deps.arn, 'jobtemplate', row.jobTemplateId),
    jobTemplateId: row.jobTemplateId,
    versionNumber: row.versionNumber,
  };
}

/**
 * CreateJobTemplate (reference §5.11): a description plus one of document, documentSource or jobArn (an existing
 * job whose document and configuration are copied), and the configuration CreateJob takes from it. The template
 * starts at version 1.
 */
export async function createJobTemplate(deps: ServiceDeps, input: CreateJobTemplateInput) {
  const content = await prepareTemplate(deps, input);
  const now = deps.clock();
  const row = await deps.db.transaction((tx) =>
    insertJobTemplate(tx, { ...content, jobTemplateId: input.jobTemplateId, versionNumber: 1 }, now),
  );
  // AWS's response shape exactly; the version (1) is in DescribeJobTemplate.
  const { versionNumber: _, ...ref } = templateRef(deps, row);
  return ref;
}

/**
 * CreateJobTemplateVersion (fleetjobs extension): a new version with the body of CreateJobTemplate; it becomes the
 * template's latest, which CreateJob uses unless it names a jobTemplateVersion. Earlier versions stay as they were.
 */
export async function createJobTemplateVersion(deps: ServiceDeps, input: CreateJobTemplateInput) {
  const content = await prepareTemplate(deps, input);
  const now = deps.clock();
  const row = await deps.db.transaction(async (tx) => {
    const current = await selectJobTemplate(tx, input.jobTemplateId);
    if (!current) {
      throw new FleetJobsError('ResourceNotFound', `job template ${input.jobTemplateId} does not exist`);
    }
    const next = await insertNextJobTemplateVersion(
      tx,
      { ...content, jobTemplateId: input.jobTemplateId, expectedVersion: current.versionNumber },
      now,
    );
    if (!next) throw new FleetJobsError('Conflict', 'the job template changed meanwhile; retry');
    return next;
  });
  return templateRef(deps, row);
}

export async function describeJobTemplate(deps: ServiceDeps, jobTemplateId: string) {
  const row = await selectJobTemplate(deps.db, jobTemplateId);
  if (!row) throw new FleetJobsError('ResourceNotFound', `job template ${jobTemplateId} does not exist`);
  return jobTemplateView(deps.arn, row);
}

/** DescribeJobTemplateVersion (fleetjobs extension): one version, as DescribeJobTemplate shows the latest. */
export async function describeJobTemplateVersion(
  deps: ServiceDeps,
  jobTemplateId: string,
  versionNumber: number,
) {
  const row = await selectJobTemplateVersion(deps.db, jobTemplateId, versionNumber);
  if (!row) {
    throw new FleetJobsError(
      'ResourceNotFound',
      `job template ${jobTemplateId} has no version ${versionNumber}`,
    );
  }
  return jobTemplateView(deps.arn, row);
}

/** ListJobTemplateVersions (fleetjobs extension): oldest first. */
export async function listJobTemplateVersions(
  deps: ServiceDeps,
  jobTemplateId: string,
  q: { maxResults?: number; nextToken?: string },
) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('job-template-versions', q.nextToken, ['number']);
  if (after === null && !(await selectJobTemplate(deps.db, jobTemplateId))) {
    throw new FleetJobsError('ResourceNotFound', `job template ${jobTemplateId} does not exist`);
  }
  const rows = await selectJobTemplateVersionsPage(deps.db, {
    jobTemplateId,
    after: (after?.[0] as number | undefined) ?? null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'job-template-versions', (t) => [t.versionNumber]);
  return {
    versions: p.items.map((t) => ({
      versionNumber: t.versionNumber,
      description: t.description,
      createdAt: awsTime(t.createdAt),
    })),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
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

/** One template with every version, as export writes it and import reads it. */
export interface TemplateExport {
  jobTemplateId: string;
  versions: (Omit<CreateJobTemplateInput, 'jobTemplateId'> & { versionNumber?: number | undefined })[];
}

/** ExportJobTemplate (fleetjobs extension): the template and all its versions, oldest first, as plain JSON. */
export async function exportJobTemplate(deps: ServiceDeps, jobTemplateId: string): Promise<TemplateExport> {
  const rows = await selectJobTemplateVersionsPage(deps.db, { jobTemplateId, after: null, limit: null });
  if (rows.length === 0) {
    throw new FleetJobsError('ResourceNotFound', `job template ${jobTemplateId} does not exist`);
  }
  return {
    jobTemplateId,
    versions: rows.map((r) => ({
      versionNumber: r.versionNumber,
      description: r.description,
      ...(r.document !== null ? { document: r.document } : {}),
      ...(r.documentSource !== null ? { documentSource: r.documentSource } : {}),
      ...r.config,
    })),
  };
}

/**
 * ImportJobTemplates (fleetjobs extension): creates each exported template with its versions (numbers kept, or
 * 1, 2, ... when absent), every version checked as CreateJobTemplate checks it, all in one transaction: a
 * template that exists already, or one bad version, imports nothing.
 */
export async function importJobTemplates(deps: ServiceDeps, input: { jobTemplates: TemplateExport[] }) {
  const prepared: { jobTemplateId: string; versions: (TemplateContent & { versionNumber: number })[] }[] = [];
  const ids = new Set<string>();
  for (const t of input.jobTemplates) {
    if (ids.has(t.jobTemplateId)) {
      throw new FleetJobsError('InvalidRequest', `job template ${t.jobTemplateId} is in the import twice`);
    }
    ids.add(t.jobTemplateId);
    const versions: (TemplateContent & { versionNumber: number })[] = [];
    let previous = 0;
    for (const v of t.versions) {
      const { versionNumber, ...body } = v;
      const n = versionNumber ?? previous + 1;
      if (n <= previous) {
        throw new FleetJobsError(
          'InvalidRequest',
          `job template ${t.jobTemplateId}: versionNumber ${n} follows ${previous}; versions must be in increasing order`,
        );
      }
      versions.push({ ...(await prepareTemplate(deps, body)), versionNumber: n });
      previous = n;
    }
    prepared.push({ jobTemplateId: t.jobTemplateId, versions });
  }
  const now = deps.clock();
  await deps.db.transaction(async (tx) => {
    for (const t of prepared) {
      const [first, ...rest] = t.versions;
      if (first === undefined) continue;
      await insertJobTemplate(tx, { ...first, jobTemplateId: t.jobTemplateId }, now);
      let expected = first.versionNumber;
      for (const v of rest) {
        await insertNextJobTemplateVersion(
          tx,
          { ...v, jobTemplateId: t.jobTemplateId, expectedVersion: expected },
          now,
        );
        expected = v.versionNumber;
      }
    }
  });
  return {
    jobTemplates: prepared.map((t) => ({
      jobTemplateArn: buildArn(deps.arn, 'jobtemplate', t.jobTemplateId),
      jobTemplateId: t.jobTemplateId,
      versionNumber: t.versions[t.versions.length - 1]?.versionNumber,
    })),
  };
}

/**
 * The template (a given version, or the latest) a job or a schedule names by ARN; InvalidRequest for an ARN that
 * is not a job template's, ResourceNotFound for a missing template or version.
 */
export async function resolveJobTemplate(
  deps: ServiceDeps,
  jobTemplateArn: string,
  versionNumber: number | undefined,
): Promise<JobTemplateRow> {
  const parsed = parseJobTemplateArn(jobTemplateArn, deps.arn);
  if ('error' in parsed) throw new FleetJobsError('InvalidRequest', parsed.error);
  const template =
    versionNumber === undefined
      ? await selectJobTemplate(deps.db, parsed.jobTemplateId)
      : await selectJobTemplateVersion(deps.db, parsed.jobTemplateId, versionNumber);
  if (!template) {
    throw new FleetJobsError(
      'ResourceNotFound',
      versionNumber === undefined
        ? `job template ${parsed.jobTemplateId} does not exist`
        : `job template ${parsed.jobTemplateId} has no version ${versionNumber}`,
    );
  }
  return template;
}
