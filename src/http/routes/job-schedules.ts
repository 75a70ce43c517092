import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import { LIMITS } from '../../protocol/limits.js';
import { description, documentParameters, listQuery, targets } from '../schemas/common.js';
import {
  deleteJobSchedule,
  describeJobSchedule,
  listJobScheduleRuns,
  listJobSchedules,
  putJobSchedule,
  setJobScheduleState,
  type PutJobScheduleInput,
} from '../../service/job-schedules.js';
import { RESPONSES } from '../schemas/responses.js';

interface ScheduleParams {
  scheduleId: string;
}
const scheduleParams = {
  type: 'object',
  properties: {
    scheduleId: { type: 'string', pattern: `^[a-zA-Z0-9_-]{1,${LIMITS.MAX_SCHEDULE_ID_CHARS}}$` },
  },
  required: ['scheduleId'],
} as const;

const putScheduleBody = {
  type: 'object',
  required: ['scheduleExpression', 'jobTemplateArn', 'targets'],
  properties: {
    description,
    scheduleExpression: { type: 'string', minLength: 1, maxLength: 256 },
    scheduleExpressionTimezone: { type: 'string', minLength: 1, maxLength: 64 },
    jobTemplateArn: {
      type: 'string',
      minLength: 1,
      maxLength: 1600,
      pattern: '^(arn:[!-~]+|[a-zA-Z0-9_-]{1,64})$',
    },
    jobTemplateVersion: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    targets,
    documentParameters,
    concurrencyPolicy: { enum: ['ALLOW', 'SKIP'] },
    state: { enum: ['ENABLED', 'PAUSED'] },
  },
} as const;

const tags = ['job schedules'];

/**
 * Recurring jobs (fleetjobs extension; named after EventBridge Scheduler): PutJobSchedule, DescribeJobSchedule,
 * ListJobSchedules, DeleteJobSchedule, PauseJobSchedule, ResumeJobSchedule, ListJobScheduleRuns.
 */
export function jobScheduleRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.put<{ Params: ScheduleParams; Body: Omit<PutJobScheduleInput, 'scheduleId'> }>(
      '/job-schedules/:scheduleId',
      {
        schema: {
          response: { 200: RESPONSES.jobSchedule },
          summary: 'PutJobSchedule: create a recurring job, or replace it',
          tags,
          params: scheduleParams,
          body: putScheduleBody,
        },
      },
      async (request) => putJobSchedule(deps, { ...request.body, scheduleId: request.params.scheduleId }),
    );

    app.get<{ Params: ScheduleParams }>(
      '/job-schedules/:scheduleId',
      {
        schema: {
          response: { 200: RESPONSES.jobSchedule },
          summary: 'DescribeJobSchedule',
          tags,
          params: scheduleParams,
        },
      },
      async (request) => describeJobSchedule(deps, request.params.scheduleId),
    );

    app.get<{ Querystring: { maxResults?: number; nextToken?: string } }>(
      '/job-schedules',
      {
        schema: {
          response: { 200: RESPONSES.listJobSchedules },
          summary: 'ListJobSchedules, by id',
          tags,
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listJobSchedules(deps, request.query),
    );

    app.delete<{ Params: ScheduleParams }>(
      '/job-schedules/:scheduleId',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteJobSchedule (its jobs stay)',
          tags,
          params: scheduleParams,
        },
      },
      async (request) => {
        await deleteJobSchedule(deps, request.params.scheduleId);
        return {};
      },
    );

    app.put<{ Params: ScheduleParams }>(
      '/job-schedules/:scheduleId/pause',
      {
        schema: {
          response: { 200: RESPONSES.jobSchedule },
          summary: 'PauseJobSchedule',
          tags,
          params: scheduleParams,
        },
      },
      async (request) => setJobScheduleState(deps, request.params.scheduleId, 'PAUSED'),
    );

    app.put<{ Params: ScheduleParams }>(
      '/job-schedules/:scheduleId/resume',
      {
        schema: {
          response: { 200: RESPONSES.jobSchedule },
          summary: 'ResumeJobSchedule: ticks restart after now',
          tags,
          params: scheduleParams,
        },
      },
      async (request) => setJobScheduleState(deps, request.params.scheduleId, 'ENABLED'),
    );

    app.get<{ Params: ScheduleParams; Querystring: { maxResults?: number; nextToken?: string } }>(
      '/job-schedules/:scheduleId/runs',
      {
        schema: {
          response: { 200: RESPONSES.listJobScheduleRuns },
          summary: 'ListJobScheduleRuns: newest first',
          tags,
          params: scheduleParams,
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listJobScheduleRuns(deps, request.params.scheduleId, request.query),
    );
  };
}
