import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import {
  abortConfig,
  description,
  document,
  jobTemplateId,
  listQuery,
  maintenanceWindows,
  presignedUrlConfig,
  priority,
  retryConfig,
  rolloutConfig,
  timeoutConfig,
} from '../schemas/common.js';
import {
  createJobTemplate,
  deleteJobTemplate,
  describeJobTemplate,
  listJobTemplates,
  type CreateJobTemplateInput,
} from '../../service/job-templates.js';

interface TemplateParams {
  jobTemplateId: string;
}
const templateParams = {
  type: 'object',
  properties: { jobTemplateId },
  required: ['jobTemplateId'],
} as const;

const createTemplateBody = {
  type: 'object',
  required: ['description'],
  properties: {
    description: { ...description, minLength: 1 },
    document,
    documentSource: { type: 'string', minLength: 1, maxLength: 1350 },
    jobArn: { type: 'string', minLength: 1, maxLength: 2048 },
    presignedUrlConfig,
    jobExecutionsRolloutConfig: rolloutConfig,
    abortConfig,
    timeoutConfig,
    jobExecutionsRetryConfig: retryConfig,
    maintenanceWindows,
    destinationPackageVersions: { type: 'array', maxItems: 25, items: { type: 'string' } },
    priority,
    tags: { type: 'array' },
    documentParameters: {
      type: 'array',
      maxItems: 10,
      description:
        'fleetjobs extension (the shape of AWS managed templates): parameters documentParameters fill',
      items: {
        type: 'object',
        required: ['key'],
        properties: {
          key: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,128}$' },
          description: { type: 'string', maxLength: 2028 },
          regex: { type: 'string', maxLength: 1024 },
          example: { type: 'string', maxLength: 2028 },
          optional: { type: 'boolean' },
        },
      },
    },
  },
} as const;

/** Job templates: CreateJobTemplate, DescribeJobTemplate, ListJobTemplates, DeleteJobTemplate. */
export function jobTemplateRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.put<{ Params: TemplateParams; Body: Omit<CreateJobTemplateInput, 'jobTemplateId'> }>(
      '/job-templates/:jobTemplateId',
      {
        schema: {
          summary: 'CreateJobTemplate',
          tags: ['job templates'],
          params: templateParams,
          body: createTemplateBody,
        },
      },
      async (request) =>
        createJobTemplate(deps, { ...request.body, jobTemplateId: request.params.jobTemplateId }),
    );

    app.get<{ Params: TemplateParams }>(
      '/job-templates/:jobTemplateId',
      { schema: { summary: 'DescribeJobTemplate', tags: ['job templates'], params: templateParams } },
      async (request) => describeJobTemplate(deps, request.params.jobTemplateId),
    );

    app.get<{ Querystring: { maxResults?: number; nextToken?: string } }>(
      '/job-templates',
      {
        schema: {
          summary: 'ListJobTemplates',
          tags: ['job templates'],
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listJobTemplates(deps, request.query),
    );

    app.delete<{ Params: TemplateParams }>(
      '/job-templates/:jobTemplateId',
      { schema: { summary: 'DeleteJobTemplate', tags: ['job templates'], params: templateParams } },
      async (request) => {
        await deleteJobTemplate(deps, request.params.jobTemplateId);
        return {};
      },
    );
  };
}
