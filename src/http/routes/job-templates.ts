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
  createJobTemplateVersion,
  deleteJobTemplate,
  describeJobTemplate,
  describeJobTemplateVersion,
  exportJobTemplate,
  importJobTemplates,
  listJobTemplates,
  listJobTemplateVersions,
  type CreateJobTemplateInput,
  type TemplateExport,
} from '../../service/job-templates.js';
import { RESPONSES } from '../schemas/responses.js';

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
    documentParametersSchema: {
      type: 'object',
      description:
        "fleetjobs extension: a JSON Schema that CreateJob's documentParameters (an object of strings) must satisfy",
    },
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

const versionNumber = { type: 'integer', minimum: 1, maximum: 2_147_483_647 } as const;

/** One exported template: its id and its versions, each a CreateJobTemplate body with its versionNumber. */
const templateExport = {
  type: 'object',
  required: ['jobTemplateId', 'versions'],
  properties: {
    jobTemplateId,
    versions: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        ...createTemplateBody,
        properties: { ...createTemplateBody.properties, versionNumber },
      },
    },
  },
} as const;

/**
 * Job templates: CreateJobTemplate, DescribeJobTemplate, ListJobTemplates, DeleteJobTemplate, and the fleetjobs
 * extensions: versions (create, list, describe), export and import.
 */
export function jobTemplateRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.put<{ Params: TemplateParams; Body: Omit<CreateJobTemplateInput, 'jobTemplateId'> }>(
      '/job-templates/:jobTemplateId',
      {
        schema: {
          response: { 200: RESPONSES.createJobTemplate },
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
      {
        schema: {
          response: { 200: RESPONSES.describeJobTemplate },
          summary: 'DescribeJobTemplate',
          tags: ['job templates'],
          params: templateParams,
        },
      },
      async (request) => describeJobTemplate(deps, request.params.jobTemplateId),
    );

    app.get<{ Querystring: { maxResults?: number; nextToken?: string } }>(
      '/job-templates',
      {
        schema: {
          response: { 200: RESPONSES.listJobTemplates },
          summary: 'ListJobTemplates',
          tags: ['job templates'],
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listJobTemplates(deps, request.query),
    );

    app.post<{ Params: TemplateParams; Body: Omit<CreateJobTemplateInput, 'jobTemplateId'> }>(
      '/job-templates/:jobTemplateId/versions',
      {
        schema: {
          response: { 200: RESPONSES.createJobTemplateVersion },
          summary: 'fleetjobs extension (CreateJobTemplateVersion): a new latest version',
          tags: ['job templates'],
          params: templateParams,
          body: createTemplateBody,
        },
      },
      async (request) =>
        createJobTemplateVersion(deps, { ...request.body, jobTemplateId: request.params.jobTemplateId }),
    );

    app.get<{ Params: TemplateParams; Querystring: { maxResults?: number; nextToken?: string } }>(
      '/job-templates/:jobTemplateId/versions',
      {
        schema: {
          response: { 200: RESPONSES.listJobTemplateVersions },
          summary: 'fleetjobs extension (ListJobTemplateVersions): oldest first',
          tags: ['job templates'],
          params: templateParams,
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listJobTemplateVersions(deps, request.params.jobTemplateId, request.query),
    );

    app.get<{ Params: TemplateParams & { versionNumber: number } }>(
      '/job-templates/:jobTemplateId/versions/:versionNumber',
      {
        schema: {
          response: { 200: RESPONSES.describeJobTemplateVersion },
          summary: 'fleetjobs extension (DescribeJobTemplateVersion)',
          tags: ['job templates'],
          params: {
            type: 'object',
            properties: { jobTemplateId, versionNumber },
            required: ['jobTemplateId', 'versionNumber'],
          },
        },
      },
      async (request) =>
        describeJobTemplateVersion(deps, request.params.jobTemplateId, request.params.versionNumber),
    );

    app.get<{ Params: TemplateParams }>(
      '/job-templates/:jobTemplateId/export',
      {
        schema: {
          response: { 200: RESPONSES.exportJobTemplate },
          summary: 'fleetjobs extension (ExportJobTemplate): the template and every version as JSON',
          tags: ['job templates'],
          params: templateParams,
        },
      },
      async (request) => exportJobTemplate(deps, request.params.jobTemplateId),
    );

    app.post<{ Body: { jobTemplates: TemplateExport[] } }>(
      '/job-templates/import',
      {
        schema: {
          response: { 200: RESPONSES.importJobTemplates },
          summary: 'fleetjobs extension (ImportJobTemplates): exported templates, all or none',
          tags: ['job templates'],
          body: {
            type: 'object',
            required: ['jobTemplates'],
            properties: { jobTemplates: { type: 'array', minItems: 1, maxItems: 25, items: templateExport } },
          },
        },
      },
      async (request) => importJobTemplates(deps, request.body),
    );

    app.delete<{ Params: TemplateParams }>(
      '/job-templates/:jobTemplateId',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteJobTemplate',
          tags: ['job templates'],
          params: templateParams,
        },
      },
      async (request) => {
        await deleteJobTemplate(deps, request.params.jobTemplateId);
        return {};
      },
    );
  };
}
