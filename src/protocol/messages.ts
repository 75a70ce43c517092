import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LIMITS, STATUS_DETAILS_KEY_PATTERN, STATUS_DETAILS_VALUE_PATTERN } from './limits.js';
import type { ExecutionStatus } from './states.js';

/** [protocol §3] Wire shapes of the device MQTT API, exactly those of AWS IoT Jobs (timestamps in epoch seconds). */
export type StatusDetails = Record<string, string>;

export interface JobExecution {
  jobId: string;
  thingName?: string;
  status: ExecutionStatus;
  statusDetails?: StatusDetails;
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
  versionNumber: number;
  executionNumber: number;
  approximateSecondsBeforeTimedOut?: number;
  jobDocument?: unknown;
}

export interface JobExecutionSummary {
  jobId: string;
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
  versionNumber: number;
  executionNumber: number;
}

export interface JobExecutionState {
  status: ExecutionStatus;
  statusDetails?: StatusDetails;
  versionNumber: number;
}

export interface GetPendingRequest {
  clientToken?: string;
}
export interface StartNextRequest {
  clientToken?: string;
  statusDetails?: StatusDetails;
  stepTimeoutInMinutes?: number;
}
export interface DescribeRequest {
  clientToken?: string;
  executionNumber?: number;
  includeJobDocument?: boolean;
}
export interface UpdateRequest {
  clientToken?: string;
  status: string;
  statusDetails?: StatusDetails;
  expectedVersion?: number;
  executionNumber?: number;
  includeJobExecutionState?: boolean;
  includeJobDocument?: boolean;
  stepTimeoutInMinutes?: number;
}

export interface GetPendingAccepted {
  clientToken?: string;
  timestamp: number;
  inProgressJobs: JobExecutionSummary[];
  queuedJobs: JobExecutionSummary[];
}
export interface ExecutionAccepted {
  clientToken?: string;
  timestamp: number;
  execution?: JobExecution;
}
export interface UpdateAccepted {
  clientToken?: string;
  timestamp: number;
  executionState?: JobExecutionState;
  jobDocument?: unknown;
}
export interface RejectedReply {
  code: string;
  message: string;
  clientToken?: string;
  timestamp: number;
  executionState?: JobExecutionState;
}
export interface NotifyEvent {
  timestamp: number;
  jobs: { IN_PROGRESS?: JobExecutionSummary[]; QUEUED?: JobExecutionSummary[] };
}
export interface NotifyNextEvent {
  timestamp: number;
  execution?: JobExecution;
}

export const statusDetailsSchema = {
  type: 'object',
  maxProperties: LIMITS.MAX_STATUS_DETAILS_PAIRS,
  propertyNames: { pattern: STATUS_DETAILS_KEY_PATTERN },
  additionalProperties: { type: 'string', pattern: STATUS_DETAILS_VALUE_PATTERN },
} as const;

const clientToken = { type: 'string', minLength: 1, maxLength: LIMITS.MAX_CLIENT_TOKEN_CHARS } as const;
// JSON integers may be huge (4.7e268 is an integer to JSON Schema); bigint columns and exact arithmetic stop here.
const counter = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
const stepTimeout = {
  type: 'integer',
  minimum: LIMITS.MIN_TIMEOUT_MINUTES,
  maximum: LIMITS.MAX_TIMEOUT_MINUTES,
} as const;

// Unknown fields are ignored, never rejected: several AWS clients send thingName/jobId in payloads.
export const getPendingRequestSchema = {
  type: 'object',
  properties: { clientToken },
} as const;

export const startNextRequestSchema = {
  type: 'object',
  properties: { clientToken, statusDetails: statusDetailsSchema, stepTimeoutInMinutes: stepTimeout },
} as const;

export const describeRequestSchema = {
  type: 'object',
  properties: {
    clientToken,
    executionNumber: counter,
    includeJobDocument: { type: 'boolean' },
  },
} as const;

export const updateRequestSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    clientToken,
    status: { type: 'string' },
    statusDetails: statusDetailsSchema,
    // AWS's embedded Jobs library sends expectedVersion as a numeric string; accept both.
    expectedVersion: {
      anyOf: [
        { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        { type: 'string', pattern: '^[0-9]{1,15}$' },
      ],
    },
    executionNumber: counter,
    includeJobExecutionState: { type: 'boolean' },
    includeJobDocument: { type: 'boolean' },
    stepTimeoutInMinutes: {
      anyOf: [stepTimeout, { const: -1 }],
    },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true, unicodeRegExp: true });

function compile<T>(schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema);
}

export const validators = {
  GetPendingJobExecutions: compile<GetPendingRequest>(getPendingRequestSchema),
  StartNextPendingJobExecution: compile<StartNextRequest>(startNextRequestSchema),
  DescribeJobExecution: compile<DescribeRequest>(describeRequestSchema),
  UpdateJobExecution: compile<UpdateRequest>(updateRequestSchema),
};

/** A one-line, AWS-style description of the first schema violation. */
export function describeValidationError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'the request is not valid';
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'request';
  if (e.keyword === 'required')
    return `Value null at '${String(e.params.missingProperty)}' failed to satisfy constraint: Member must not be null`;
  if (e.keyword === 'propertyNames')
    return `${where} has a key that does not match ${STATUS_DETAILS_KEY_PATTERN}`;
  return `Value at '${where}' failed to satisfy constraint: ${e.message ?? 'invalid'}`;
}

/** Integer epoch seconds, the device plane's only time format. */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
