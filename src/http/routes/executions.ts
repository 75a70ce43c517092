import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import {
  executionStatus,
  force,
  jobId,
  listQuery,
  namespaceId,
  statusDetails,
  thingName,
} from '../schemas/common.js';
import type { ExecutionStatus } from '../../protocol/states.js';
import {
  describeJobExecution,
  listJobExecutionsForJob,
  listJobExecutionsForThing,
} from '../../service/describe-jobs.js';
import { cancelJobExecution } from '../../service/cancel-job-execution.js';
import { deleteJobExecution } from '../../service/delete-job-execution.js';
import { listDeadLetters, retryJobExecution, type ListExecutionsQuery } from '../../service/dead-letters.js';
import { RESPONSES } from '../schemas/responses.js';

interface ExecutionParams {
  thingName: string;
  jobId: string;
}
const executionParams = {
  type: 'object',
  properties: { thingName, jobId },
  required: ['thingName', 'jobId'],
} as const;

/**
 * Job executions on the control plane: the two lists, DescribeJobExecution, CancelJobExecution,
 * DeleteJobExecution, and the dead-letter extensions (GET /executions?retriesExhausted=true, RetryJobExecution).
 */
export function executionRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{
      Params: { jobId: string };
      Querystring: { status?: ExecutionStatus; maxResults?: number; nextToken?: string };
    }>(
      '/jobs/:jobId/things',
      {
        schema: {
          response: { 200: RESPONSES.listJobExecutionsForJob },
          summary: 'ListJobExecutionsForJob, in thing name order',
          tags: ['executions'],
          params: { type: 'object', properties: { jobId }, required: ['jobId'] },
          querystring: { type: 'object', properties: { ...listQuery, status: executionStatus } },
        },
      },
      async (request) => listJobExecutionsForJob(deps, { jobId: request.params.jobId, ...request.query }),
    );

    app.get<{
      Params: { thingName: string };
      Querystring: {
        status?: ExecutionStatus;
        jobId?: string;
        namespaceId?: string;
        maxResults?: number;
        nextToken?: string;
      };
    }>(
      '/things/:thingName/jobs',
      {
        schema: {
          response: { 200: RESPONSES.listJobExecutionsForThing },
          summary: 'ListJobExecutionsForThing, newest first',
          tags: ['executions'],
          params: { type: 'object', properties: { thingName }, required: ['thingName'] },
          querystring: {
            type: 'object',
            properties: { ...listQuery, status: executionStatus, jobId, namespaceId },
          },
        },
      },
      async (request) =>
        listJobExecutionsForThing(deps, { thingName: request.params.thingName, ...request.query }),
    );

    app.get<{ Params: ExecutionParams; Querystring: { executionNumber?: number } }>(
      '/things/:thingName/jobs/:jobId',
      {
        schema: {
          response: { 200: RESPONSES.describeJobExecution },
          summary: 'DescribeJobExecution: the latest execution unless executionNumber is given',
          tags: ['executions'],
          params: executionParams,
          querystring: { type: 'object', properties: { executionNumber: { type: 'integer', minimum: 0 } } },
        },
      },
      async (request) =>
        describeJobExecution(deps, {
          ...request.params,
          ...(request.query.executionNumber !== undefined
            ? { executionNumber: request.query.executionNumber }
            : {}),
        }),
    );

    app.put<{
      Params: ExecutionParams;
      Querystring: { force: boolean };
      Body: { expectedVersion?: number; statusDetails?: Record<string, string> };
    }>(
      '/things/:thingName/jobs/:jobId/cancel',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'CancelJobExecution: QUEUED → CANCELED; IN_PROGRESS with force=true',
          tags: ['executions'],
          params: executionParams,
          querystring: { type: 'object', properties: { force } },
          body: {
            type: 'object',
            properties: { expectedVersion: { type: 'integer', minimum: 0 }, statusDetails },
          },
        },
      },
      async (request) => {
        await cancelJobExecution(deps, {
          ...request.params,
          force: request.query.force,
          expectedVersion: request.body.expectedVersion,
          statusDetails: request.body.statusDetails,
        });
        return {};
      },
    );

    app.get<{ Querystring: ListExecutionsQuery }>(
      '/executions',
      {
        schema: {
          response: { 200: RESPONSES.listDeadLetters },
          operationId: 'ListDeadLetters',
          summary:
            'fleetjobs extension: dead letters (FAILED / TIMED_OUT with no retry left), newest first, with every attempt',
          tags: ['executions'],
          querystring: {
            type: 'object',
            required: ['retriesExhausted'],
            properties: {
              ...listQuery,
              retriesExhausted: { type: 'boolean' },
              status: { enum: ['FAILED', 'TIMED_OUT'] },
              jobId,
              thingName,
            },
          },
        },
      },
      async (request) => listDeadLetters(deps, request.query),
    );

    app.put<{ Params: ExecutionParams }>(
      '/things/:thingName/jobs/:jobId/retry',
      {
        schema: {
          response: { 200: RESPONSES.retryJobExecution },
          summary:
            'fleetjobs extension (RetryJobExecution): a new QUEUED execution for a FAILED / TIMED_OUT latest execution',
          tags: ['executions'],
          params: executionParams,
        },
      },
      async (request) => retryJobExecution(deps, request.params),
    );

    app.delete<{ Params: ExecutionParams & { executionNumber: number }; Querystring: { force: boolean } }>(
      '/things/:thingName/jobs/:jobId/executionNumber/:executionNumber',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteJobExecution: terminal executions; QUEUED and IN_PROGRESS ones with force=true',
          tags: ['executions'],
          params: {
            type: 'object',
            properties: { thingName, jobId, executionNumber: { type: 'integer', minimum: 0 } },
            required: ['thingName', 'jobId', 'executionNumber'],
          },
          querystring: { type: 'object', properties: { force, namespaceId } },
        },
      },
      async (request) => {
        await deleteJobExecution(deps, { ...request.params, force: request.query.force });
        return {};
      },
    );
  };
}
