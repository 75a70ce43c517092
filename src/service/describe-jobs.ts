import { FleetJobsError } from '../protocol/errors.js';
import { buildArn } from '../protocol/arns.js';
import type { ExecutionStatus, JobStatus } from '../protocol/states.js';
import { countThingsByStatus, selectJob, selectJobsPage } from '../store/jobs.js';
import {
  selectExecution,
  selectExecutionsForJobPage,
  selectExecutionsForThingPage,
} from '../store/executions-admin.js';
import { selectThing, selectThingGroup, selectThingGroupById } from '../store/things.js';
import type { JobRow, TargetSelection } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { executionSummaryView, executionView, jobSummaryView, jobView } from './views.js';

/** Control-plane reads: DescribeJob, GetJobDocument, ListJobs, the execution lists and DescribeJobExecution. */

export async function requireJob(deps: ServiceDeps, jobId: string): Promise<JobRow> {
  const job = await selectJob(deps.db, jobId);
  if (!job) throw new FleetJobsError('ResourceNotFound', `job ${jobId} does not exist`);
  return job;
}

/** DescribeJob: the job with exact jobProcessDetails counters (latest execution of each thing). */
export async function describeJob(deps: ServiceDeps, jobId: string) {
  const job = await requireJob(deps, jobId);
  const details = await countThingsByStatus(deps.db, jobId);
  return {
    ...(job.documentSource ? { documentSource: job.documentSource } : {}),
    job: jobView(deps.arn, job, details),
  };
}

export async function getJobDocument(deps: ServiceDeps, jobId: string): Promise<{ document: string }> {
  const job = await requireJob(deps, jobId);
  return { document: job.document };
}

/** ListJobs' filters, as its querystring names them. */
export interface ListJobsQuery {
  status?: JobStatus;
  targetSelection?: TargetSelection;
  thingGroupName?: string;
  thingGroupId?: string;
  namespaceId?: string;
  maxResults?: number;
  nextToken?: string;
}

export async function listJobs(deps: ServiceDeps, q: ListJobsQuery) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('jobs', q.nextToken, ['number', 'string']);
  let thingGroupName = q.thingGroupName;
  let thingGroupId: string | undefined;
  if (q.thingGroupId !== undefined) {
    const byId = await selectThingGroupById(deps.db, q.thingGroupId);
    if (!byId) return { jobs: [] };
    if (thingGroupName !== undefined && thingGroupName !== byId.thingGroupName) return { jobs: [] };
    thingGroupName = byId.thingGroupName;
    thingGroupId = q.thingGroupId;
  } else if (thingGroupName !== undefined) {
    thingGroupId = (await selectThingGroup(deps.db, thingGroupName))?.thingGroupId;
  }
  const rows = await selectJobsPage(deps.db, {
    status: q.status,
    targetSelection: q.targetSelection,
    targetArn: thingGroupName === undefined ? undefined : buildArn(deps.arn, 'thinggroup', thingGroupName),
    namespaceId: q.namespaceId,
    after: after ? { createdAt: new Date(after[0] as number), jobId: after[1] as string } : null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'jobs', (j) => [j.createdAt.getTime(), j.jobId]);
  return {
    jobs: p.items.map((j) => jobSummaryView(deps.arn, j, thingGroupId)),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

export async function listJobExecutionsForJob(
  deps: ServiceDeps,
  q: { jobId: string; status?: ExecutionStatus; maxResults?: number; nextToken?: string },
) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('job-things', q.nextToken, ['string', 'number']);
  await requireJob(deps, q.jobId);
  const rows = await selectExecutionsForJobPage(deps.db, {
    jobId: q.jobId,
    status: q.status,
    after: after ? { thingName: after[0] as string, executionNumber: after[1] as number } : null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'job-things', (e) => [e.thingName, e.executionNumber]);
  return {
    executionSummaries: p.items.map((e) => ({
      thingArn: buildArn(deps.arn, 'thing', e.thingName),
      jobExecutionSummary: executionSummaryView(e),
    })),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

export async function listJobExecutionsForThing(
  deps: ServiceDeps,
  q: {
    thingName: string;
    status?: ExecutionStatus;
    jobId?: string;
    namespaceId?: string;
    maxResults?: number;
    nextToken?: string;
  },
) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('thing-jobs', q.nextToken, ['number', 'number']);
  if (!(await selectThing(deps.db, q.thingName))) {
    throw new FleetJobsError('ResourceNotFound', `thing ${q.thingName} does not exist`);
  }
  const rows = await selectExecutionsForThingPage(deps.db, {
    thingName: q.thingName,
    status: q.status,
    jobId: q.jobId,
    namespaceId: q.namespaceId,
    after: after ? { queuedAt: new Date(after[0] as number), seq: after[1] as number } : null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'thing-jobs', (e) => [e.queuedAt.getTime(), e.seq]);
  return {
    executionSummaries: p.items.map((e) => ({
      jobId: e.jobId,
      jobExecutionSummary: executionSummaryView(e),
    })),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

/** DescribeJobExecution (control plane): the latest execution unless executionNumber is given. */
export async function describeJobExecution(
  deps: ServiceDeps,
  q: { thingName: string; jobId: string; executionNumber?: number },
) {
  const row = await selectExecution(deps.db, q);
  if (!row) {
    throw new FleetJobsError(
      'ResourceNotFound',
      `no execution of job ${q.jobId} on thing ${q.thingName}${q.executionNumber === undefined ? '' : ` with executionNumber ${q.executionNumber}`}`,
    );
  }
  return { execution: executionView(deps.arn, row, deps.clock()) };
}
