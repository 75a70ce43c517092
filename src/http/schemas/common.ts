import {
  JOB_ID_PATTERN,
  LIMITS,
  PRINTABLE_PATTERN,
  REASON_CODE_PATTERN,
  STATUS_DETAILS_KEY_PATTERN,
  STATUS_DETAILS_VALUE_PATTERN,
  THING_GROUP_NAME_PATTERN,
  THING_NAME_PATTERN,
} from '../../protocol/limits.js';
import { EXECUTION_STATUSES, JOB_STATUSES } from '../../protocol/states.js';

/**
 * JSON-schema fragments of the AWS IoT control-plane shapes (reference §5, §6.1), shared by the route schemas.
 * Bodies are validated without type coercion (a number is not a string); path and query strings are coerced.
 */

export const jobId = {
  type: 'string',
  pattern: JOB_ID_PATTERN,
  description: '1–64 of [a-zA-Z0-9_-]',
} as const;
export const thingName = {
  type: 'string',
  pattern: THING_NAME_PATTERN,
  description: '1–128 of [a-zA-Z0-9:_-]',
} as const;
export const thingGroupName = { type: 'string', pattern: THING_GROUP_NAME_PATTERN } as const;
export const jobTemplateId = { type: 'string', pattern: JOB_ID_PATTERN } as const;
export const arn = { type: 'string', minLength: 1, maxLength: 2048 } as const;
export const printable = (max: number) =>
  ({ type: 'string', maxLength: max, pattern: PRINTABLE_PATTERN }) as const;
export const description = printable(LIMITS.MAX_DESCRIPTION_CHARS);
export const comment = printable(LIMITS.MAX_COMMENT_CHARS);
export const reasonCode = { type: 'string', pattern: REASON_CODE_PATTERN } as const;
export const namespaceId = { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' } as const;

export const attributes = {
  type: 'object',
  maxProperties: 50,
  propertyNames: { pattern: '^[a-zA-Z0-9_.,@/:#-]{1,128}$' },
  additionalProperties: { type: 'string', maxLength: 800, pattern: '^[a-zA-Z0-9_.,@/:#=\\[\\]-]*$' },
} as const;

export const statusDetails = {
  type: 'object',
  maxProperties: LIMITS.MAX_STATUS_DETAILS_PAIRS,
  propertyNames: { pattern: STATUS_DETAILS_KEY_PATTERN },
  additionalProperties: { type: 'string', pattern: STATUS_DETAILS_VALUE_PATTERN },
} as const;

const minutes = {
  type: 'integer',
  minimum: LIMITS.MIN_TIMEOUT_MINUTES,
  maximum: LIMITS.MAX_TIMEOUT_MINUTES,
} as const;

export const timeoutConfig = {
  type: 'object',
  properties: {
    inProgressTimeoutInMinutes: minutes,
    queuedTimeoutInMinutes: {
      ...minutes,
      description: 'fleetjobs extension: QUEUED longer than this → TIMED_OUT',
    },
  },
} as const;

export const retryConfig = {
  type: 'object',
  required: ['criteriaList'],
  properties: {
    criteriaList: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      items: {
        type: 'object',
        required: ['failureType', 'numberOfRetries'],
        properties: {
          failureType: { enum: ['FAILED', 'TIMED_OUT', 'ALL'] },
          numberOfRetries: { type: 'integer', minimum: 0, maximum: LIMITS.MAX_RETRIES_TOTAL },
        },
      },
    },
    retryDelaySeconds: { type: 'integer', minimum: 0, maximum: 86_400, description: 'fleetjobs extension' },
    backoffFactor: { type: 'number', minimum: 1, maximum: 10, description: 'fleetjobs extension' },
    maxDelaySeconds: { type: 'integer', minimum: 1, maximum: 86_400, description: 'fleetjobs extension' },
  },
} as const;

export const rolloutConfig = {
  type: 'object',
  properties: {
    maximumPerMinute: { type: 'integer', minimum: 1, maximum: 1000 },
    exponentialRate: {
      type: 'object',
      required: ['baseRatePerMinute', 'incrementFactor', 'rateIncreaseCriteria'],
      properties: {
        baseRatePerMinute: { type: 'integer', minimum: 1, maximum: 1000 },
        incrementFactor: { type: 'number', minimum: 1.1, maximum: 5 },
        rateIncreaseCriteria: {
          type: 'object',
          properties: {
            numberOfNotifiedThings: { type: 'integer', minimum: 1 },
            numberOfSucceededThings: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
  },
} as const;

export const abortConfig = {
  type: 'object',
  required: ['criteriaList'],
  properties: {
    criteriaList: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['failureType', 'action', 'thresholdPercentage', 'minNumberOfExecutedThings'],
        properties: {
          failureType: { enum: ['FAILED', 'REJECTED', 'TIMED_OUT', 'ALL'] },
          action: { enum: ['CANCEL'] },
          thresholdPercentage: { type: 'number', minimum: 0, maximum: 100 },
          minNumberOfExecutedThings: { type: 'integer', minimum: 1 },
        },
      },
    },
  },
} as const;

export const maintenanceWindows = {
  type: 'array',
  items: {
    type: 'object',
    required: ['startTime', 'durationInMinutes'],
    properties: {
      startTime: { type: 'string', minLength: 1, maxLength: 256 },
      durationInMinutes: { type: 'integer', minimum: 1, maximum: 1430 },
    },
  },
} as const;

export const schedulingConfig = {
  type: 'object',
  properties: {
    startTime: { type: 'string', minLength: 1, maxLength: 64 },
    endTime: { type: 'string', minLength: 1, maxLength: 64 },
    endBehavior: { enum: ['STOP_ROLLOUT', 'CANCEL', 'FORCE_CANCEL'] },
    maintenanceWindows,
  },
} as const;

export const presignedUrlConfig = {
  type: 'object',
  properties: {
    roleArn: { type: 'string', minLength: 20, maxLength: 2048 },
    expiresInSec: { type: 'integer', minimum: 60, maximum: 3600 },
  },
} as const;

export const document = {
  type: 'string',
  // The exact 32,768-character limit is checked by the service with a message that gives both sizes.
  description: `The job document: a JSON object as a string, at most ${LIMITS.MAX_JOB_DOCUMENT_CHARS} characters`,
} as const;

export const documentParameters = {
  type: 'object',
  propertyNames: { pattern: '^[a-zA-Z0-9_-]{1,128}$' },
  additionalProperties: {
    type: 'string',
    minLength: 1,
    maxLength: LIMITS.MAX_DOCUMENT_PARAMETER_VALUE_CHARS,
    pattern: '^[^\\p{C}]+$',
  },
} as const;

export const priority = {
  type: 'integer',
  minimum: -LIMITS.MAX_PRIORITY,
  maximum: LIMITS.MAX_PRIORITY,
  description:
    "fleetjobs extension (AWS has none): orders a thing's pending executions, higher first; 0 without one",
} as const;

export const listQuery = {
  maxResults: { type: 'integer', minimum: LIMITS.MIN_LIST_RESULTS, maximum: LIMITS.MAX_LIST_RESULTS },
  nextToken: { type: 'string', maxLength: 1024 },
} as const;

export const force = { type: 'boolean', default: false } as const;
export const executionStatus = { enum: [...EXECUTION_STATUSES] } as const;
export const jobStatus = { enum: [...JOB_STATUSES] } as const;
export const targetSelection = { enum: ['SNAPSHOT', 'CONTINUOUS'] } as const;

export const targets = {
  type: 'array',
  minItems: 1,
  maxItems: LIMITS.MAX_TARGETS_PER_JOB,
  items: arn,
  description: 'thing or thing-group ARNs, or thing/{name} and thinggroup/{name}',
} as const;
