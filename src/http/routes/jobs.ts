import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import {
  abortConfig,
  comment,
  description,
  document,
  documentParameters,
  force,
  jobId,
  jobStatus,
  listQuery,
  namespaceId,
  presignedUrlConfig,
  priority,
  reasonCode,
  retryConfig,
  rolloutConfig,
  schedulingConfig,
  targetSelection,
  targets,
  thingGroupName,
  timeoutConfig,
} from '../schemas/common.js';
import { buildArn } from '../../protocol/arns.js';
import { createJob, type CreateJobInput } from '../../service/create-job.js';
import { cancelJob } from '../../service/cancel-job.js';
import { deleteJob } from '../../service/delete-job.js';
import { updateJob, type UpdateJobInput } from '../../service/update-job.js';
import { associateTargetsWithJob } from '../../service/associate-targets.js';
import { describeJob, getJobDocument, listJobs, type ListJobsQuery } from '../../service/describe-jobs.js';
import { RESPONSES } from '../schemas/responses.js';

interface JobParams {
  jobId: string;
}
const jobParams = { type: 'object', properties: { jobId }, required: ['jobId'] } as const;

const createJobBody = {
  type: 'object',
  required: ['targets'],
  properties: {
    targets,
    document,
    documentSource: { type: 'string', minLength: 1, maxLength: 1350 },
    description,
    presignedUrlConfig,
    targetSelection,
    jobExecutionsRolloutConfig: rolloutConfig,
    abortConfig,
    timeoutConfig,
    jobExecutionsRetryConfig: retryConfig,
    schedulingConfig,
    jobTemplateArn: {
      type: 'string',
      minLength: 1,
      maxLength: 1600,
      pattern: '^(arn:[!-~]+|[a-zA-Z0-9_-]{1,64})$',
    },
    documentParameters,
    jobTemplateVersion: {
      type: 'integer',
      minimum: 1,
      maximum: 2_147_483_647,
      description: 'fleetjobs extension: the version of jobTemplateArn to use (default: its latest)',
    },
    namespaceId,
    priority,
    tags: { type: 'array' },
    destinationPackageVersions: { type: 'array', maxItems: 25, items: { type: 'string' } },
  },
} as const;

const updateJobBody = {
  type: 'object',
  properties: {
    description,
    presignedUrlConfig,
    jobExecutionsRolloutConfig: rolloutConfig,
    abortConfig,
    timeoutConfig,
    jobExecutionsRetryConfig: retryConfig,
  },
} as const;

/** Jobs: CreateJob, DescribeJob, GetJobDocument, ListJobs, UpdateJob, CancelJob, DeleteJob, AssociateTargetsWithJob. */
export function jobRoutes(deps: HttpDeps): FastifyPluginAsync {
  const created = (job: { jobId: string; description: string | null }) => ({
    jobArn: buildArn(deps.arn, 'job', job.jobId),
    jobId: job.jobId,
    ...(job.description !== null ? { description: job.description } : {}),
  });

  return async (app) => {
    app.put<{ Params: JobParams; Body: Omit<CreateJobInput, 'jobId'> }>(
      '/jobs/:jobId',
      {
        schema: {
          response: { 200: RESPONSES.jobRef },
          summary: 'CreateJob: the job and, at once, a QUEUED execution for every target thing',
          tags: ['jobs'],
          params: jobParams,
          body: createJobBody,
        },
      },
      async (request) => created(await createJob(deps, { ...request.body, jobId: request.params.jobId })),
    );

    app.get<{ Params: JobParams; Querystring: { beforeSubstitution?: boolean } }>(
      '/jobs/:jobId',
      {
        schema: {
          response: { 200: RESPONSES.describeJob },
          summary: 'DescribeJob, with exact jobProcessDetails',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { beforeSubstitution: { type: 'boolean' } } },
        },
      },
      async (request) => describeJob(deps, request.params.jobId),
    );

    app.get<{ Params: JobParams }>(
      '/jobs/:jobId/job-document',
      {
        schema: {
          response: { 200: RESPONSES.getJobDocument },
          summary: 'GetJobDocument',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { beforeSubstitution: { type: 'boolean' } } },
        },
      },
      async (request) => getJobDocument(deps, request.params.jobId),
    );

    app.get<{ Querystring: ListJobsQuery }>(
      '/jobs',
      {
        schema: {
          response: { 200: RESPONSES.listJobs },
          summary: 'ListJobs, newest first',
          tags: ['jobs'],
          querystring: {
            type: 'object',
            properties: {
              ...listQuery,
              status: jobStatus,
              targetSelection,
              thingGroupName,
              thingGroupId: { type: 'string', minLength: 1, maxLength: 128 },
              namespaceId,
            },
          },
        },
      },
      async (request) => listJobs(deps, request.query),
    );

    app.patch<{ Params: JobParams; Body: Omit<UpdateJobInput, 'jobId'> }>(
      '/jobs/:jobId',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'UpdateJob',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { namespaceId } },
          body: updateJobBody,
        },
      },
      async (request) => {
        await updateJob(deps, { ...request.body, jobId: request.params.jobId });
        return {};
      },
    );

    app.put<{
      Params: JobParams;
      Querystring: { force: boolean };
      Body: { reasonCode?: string; comment?: string };
    }>(
      '/jobs/:jobId/cancel',
      {
        schema: {
          response: { 200: RESPONSES.jobRef },
          summary: 'CancelJob: QUEUED executions CANCELED; with force=true IN_PROGRESS ones too',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { force } },
          body: { type: 'object', properties: { reasonCode, comment } },
        },
      },
      async (request) =>
        created(
          await cancelJob(deps, {
            jobId: request.params.jobId,
            force: request.query.force,
            reasonCode: request.body.reasonCode,
            comment: request.body.comment,
          }),
        ),
    );

    app.delete<{ Params: JobParams; Querystring: { force: boolean } }>(
      '/jobs/:jobId',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteJob: COMPLETED or CANCELED jobs, others with force=true; executions deleted',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { force, namespaceId } },
        },
      },
      async (request) => {
        await deleteJob(deps, { jobId: request.params.jobId, force: request.query.force });
        return {};
      },
    );

    app.post<{ Params: JobParams; Body: { targets: string[]; comment?: string } }>(
      '/jobs/:jobId/targets',
      {
        schema: {
          response: { 200: RESPONSES.jobRef },
          summary: 'AssociateTargetsWithJob: more targets for an IN_PROGRESS CONTINUOUS job',
          tags: ['jobs'],
          params: jobParams,
          querystring: { type: 'object', properties: { namespaceId } },
          body: { type: 'object', required: ['targets'], properties: { targets, comment } },
        },
      },
      async (request) =>
        created(
          await associateTargetsWithJob(deps, {
            jobId: request.params.jobId,
            targets: request.body.targets,
            comment: request.body.comment,
          }),
        ),
    );
  };
}
