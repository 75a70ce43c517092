import { ERRORS, type ErrorEntry } from '../../protocol/errors.js';
import {
  abortConfig,
  attributes,
  documentParameters,
  maintenanceWindows,
  executionStatus,
  jobStatus,
  presignedUrlConfig,
  retryConfig,
  rolloutConfig,
  schedulingConfig,
  statusDetails,
  targetSelection,
  timeoutConfig,
} from './common.js';

/**
 * Response schemas of the operator API. Fastify serialises each reply with its route's schema (fast-json-stringify),
 * which drops any member a schema does not list: every member the views in src/service/views.ts write is listed
 * here, and configurations the operator sent are echoed whole (`echo`), since they keep members we do not model.
 */

type Schema = Record<string, unknown>;

/** A copy of a request fragment whose objects keep members they do not list, as stored configurations do. */
function echo(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (out.type === 'object' && out.additionalProperties === undefined) out.additionalProperties = true;
  if (out.properties !== undefined) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties as Record<string, Schema>).map(([k, v]) => [k, echo(v)]),
    );
  }
  if (out.items !== undefined) out.items = echo(out.items as Schema);
  return out;
}

const described = <T extends object>(description: string, schema: T) => ({ ...schema, description });

const object = (properties: Record<string, unknown>, description?: string) =>
  ({ type: 'object', properties, ...(description === undefined ? {} : { description }) }) as const;

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;
/** Epoch seconds with a fractional part, as AWS returns them. */
const time = { type: 'number', description: 'epoch seconds' } as const;
const nextToken = { type: 'string', description: 'pass as nextToken for the next page; absent on the last' };
const stringList = { type: 'array', items: str } as const;
const nothing = { type: 'object', properties: {}, description: 'an empty object' } as const;

const thing = object({
  thingName: str,
  thingId: str,
  thingArn: str,
  thingTypeName: str,
  attributes,
  version: int,
  defaultClientId: str,
});

const thingGroup = object({
  thingGroupName: str,
  thingGroupId: str,
  thingGroupArn: str,
  version: int,
  thingGroupProperties: object({
    thingGroupDescription: str,
    attributePayload: object({ attributes }),
  }),
  thingGroupMetadata: object({
    rootToParentThingGroups: { type: 'array', items: object({ groupName: str, groupArn: str }) },
    creationDate: time,
  }),
});

const jobProcessDetails = object({
  processingTargets: stringList,
  numberOfCanceledThings: int,
  numberOfSucceededThings: int,
  numberOfFailedThings: int,
  numberOfRejectedThings: int,
  numberOfQueuedThings: int,
  numberOfInProgressThings: int,
  numberOfRemovedThings: int,
  numberOfTimedOutThings: int,
});

const job = object({
  jobArn: str,
  jobId: str,
  targetSelection,
  status: jobStatus,
  forceCanceled: bool,
  reasonCode: str,
  comment: str,
  targets: stringList,
  description: str,
  presignedUrlConfig: echo(presignedUrlConfig),
  jobExecutionsRolloutConfig: echo(rolloutConfig),
  abortConfig: echo(abortConfig),
  createdAt: time,
  lastUpdatedAt: time,
  completedAt: time,
  jobProcessDetails,
  timeoutConfig: echo(timeoutConfig),
  namespaceId: str,
  jobTemplateArn: str,
  jobExecutionsRetryConfig: echo(retryConfig),
  documentParameters: { type: 'object', additionalProperties: str },
  isConcurrent: bool,
  schedulingConfig: echo(schedulingConfig),
  jobTemplateVersion: int,
  priority: int,
});

const jobSummary = object({
  jobArn: str,
  jobId: str,
  thingGroupId: str,
  targetSelection,
  status: jobStatus,
  createdAt: time,
  lastUpdatedAt: time,
  completedAt: time,
  isConcurrent: bool,
});

const executionSummary = object({
  status: executionStatus,
  queuedAt: time,
  startedAt: time,
  lastUpdatedAt: time,
  executionNumber: int,
  retryAttempt: int,
});

const execution = object({
  jobId: str,
  status: executionStatus,
  forceCanceled: bool,
  statusDetails: object({ detailsMap: statusDetails }),
  thingArn: str,
  queuedAt: time,
  startedAt: time,
  lastUpdatedAt: time,
  executionNumber: int,
  versionNumber: int,
  retryAttempt: int,
  approximateSecondsBeforeTimedOut: int,
});

const jobRef = object({ jobArn: str, jobId: str, description: str });

/** The parameters a template declares for documentParameters (fleetjobs extension). */
const declaredParameters = {
  type: 'array',
  items: object({ key: str, description: str, regex: str, example: str, optional: bool }),
} as const;

/** A JSON Schema: free-form, kept whole. */
const anyObject = { type: 'object', additionalProperties: true } as const;

/** What a template version configures for CreateJob, as the operator sent it. */
const templateConfig = {
  presignedUrlConfig: echo(presignedUrlConfig),
  jobExecutionsRolloutConfig: echo(rolloutConfig),
  abortConfig: echo(abortConfig),
  timeoutConfig: echo(timeoutConfig),
  jobExecutionsRetryConfig: echo(retryConfig),
  maintenanceWindows: echo(maintenanceWindows),
  destinationPackageVersions: stringList,
  documentParameters: declaredParameters,
  priority: int,
  documentParametersSchema: anyObject,
} as const;

/** Keys configured on the template are returned as CreateJob would take them. */
const jobTemplate = {
  ...object({
    jobTemplateArn: str,
    jobTemplateId: str,
    description: str,
    documentSource: str,
    document: str,
    createdAt: time,
    ...templateConfig,
    versionNumber: int,
  }),
  additionalProperties: true,
} as const;

const templateVersionRef = object({ jobTemplateArn: str, jobTemplateId: str, versionNumber: int });

/** One exported template: every version as a CreateJobTemplate body with its versionNumber, oldest first. */
const templateExport = object({
  jobTemplateId: str,
  versions: {
    type: 'array',
    items: {
      ...object({
        versionNumber: int,
        description: str,
        document: str,
        documentSource: str,
        ...templateConfig,
      }),
      additionalProperties: true,
    },
  },
});

const deadLetterAttempt = object({
  executionNumber: int,
  retryAttempt: int,
  status: executionStatus,
  statusDetails: object({ detailsMap: statusDetails }),
  queuedAt: time,
  startedAt: time,
  lastUpdatedAt: time,
});

const deadLetter = object({
  jobId: str,
  thingName: str,
  thingArn: str,
  jobStatus,
  status: executionStatus,
  statusDetails: object({ detailsMap: statusDetails }),
  executionNumber: int,
  retryAttempt: int,
  versionNumber: int,
  queuedAt: time,
  startedAt: time,
  lastUpdatedAt: time,
  attempts: described('every attempt of the retry chain that ended here, first first', {
    type: 'array',
    items: deadLetterAttempt,
  }),
});

const jobSchedule = object({
  scheduleId: str,
  description: str,
  scheduleExpression: str,
  scheduleExpressionTimezone: str,
  jobTemplateArn: str,
  jobTemplateVersion: int,
  targets: stringList,
  documentParameters,
  concurrencyPolicy: { type: 'string', enum: ['ALLOW', 'SKIP'] },
  state: { type: 'string', enum: ['ENABLED', 'PAUSED'] },
  nextRunAt: { ...time, description: 'epoch seconds; absent while PAUSED' },
  version: int,
  createdAt: time,
  lastUpdatedAt: time,
});

const jobScheduleRun = object({
  scheduledAt: time,
  jobId: str,
  outcome: { type: 'string', enum: ['CREATED', 'SKIPPED', 'FAILED'] },
  reason: str,
  jobStatus: { ...jobStatus, description: "the run's job now; absent when it was not created or is deleted" },
  createdAt: time,
});

const keyStatus = { type: 'string', enum: ['ACTIVE', 'REVOKED'] } as const;

const credential = object({
  credentialId: str,
  status: keyStatus,
  createdAt: int,
  revokedAt: int,
});

const operatorKey = object({
  accessKeyId: str,
  role: str,
  tenantId: str,
  description: str,
  status: keyStatus,
  createdAt: int,
  revokedAt: int,
});

const tenant = object({ tenantId: str, description: str, createdAt: int });

/** The 200 response of each operator route, by operation. */
export const RESPONSES = {
  describeEndpoint: described('The host:port devices connect to', object({ endpointAddress: str })),
  empty: described('Done; the body is an empty object', nothing),
  createThing: described(
    'The thing (created, or the same one that existed)',
    object({ thingName: str, thingArn: str, thingId: str }),
  ),
  describeThing: described('The thing', thing),
  listThings: described(
    'A page of things',
    object({
      things: {
        type: 'array',
        items: object({ thingName: str, thingTypeName: str, thingArn: str, attributes, version: int }),
      },
      nextToken,
    }),
  ),
  createThingGroup: described(
    'The thing group',
    object({ thingGroupName: str, thingGroupArn: str, thingGroupId: str }),
  ),
  describeThingGroup: described('The thing group', thingGroup),
  listThingGroups: described(
    'A page of thing groups',
    object({
      thingGroups: { type: 'array', items: object({ groupName: str, groupArn: str }) },
      nextToken,
    }),
  ),
  listThingsInThingGroup: described(
    'A page of the names of the things in the group',
    object({ things: stringList, nextToken }),
  ),
  jobRef: described('The job', jobRef),
  describeJob: described(
    'The job with its per-status counts of things',
    object({ documentSource: str, job }),
  ),
  getJobDocument: described('The job document, a JSON object as a string', object({ document: str })),
  listJobs: described(
    'A page of jobs, newest first',
    object({ jobs: { type: 'array', items: jobSummary }, nextToken }),
  ),
  listJobExecutionsForJob: described(
    'A page of the executions of the job',
    object({
      executionSummaries: {
        type: 'array',
        items: object({ thingArn: str, jobExecutionSummary: executionSummary }),
      },
      nextToken,
    }),
  ),
  listJobExecutionsForThing: described(
    'A page of the executions on the thing',
    object({
      executionSummaries: {
        type: 'array',
        items: object({ jobId: str, jobExecutionSummary: executionSummary }),
      },
      nextToken,
    }),
  ),
  describeJobExecution: described('The execution', object({ execution })),
  createJobTemplate: described('The job template', object({ jobTemplateArn: str, jobTemplateId: str })),
  describeJobTemplate: described('The job template', jobTemplate),
  listJobTemplates: described(
    'A page of job templates',
    object({
      jobTemplates: {
        type: 'array',
        items: object({
          jobTemplateArn: str,
          jobTemplateId: str,
          description: { type: ['string', 'null'] },
          createdAt: time,
        }),
      },
      nextToken,
    }),
  ),
  createJobTemplateVersion: described('The new latest version of the job template', templateVersionRef),
  describeJobTemplateVersion: described('The job template version', jobTemplate),
  listJobTemplateVersions: described(
    'A page of the versions of the job template, oldest first',
    object({
      versions: {
        type: 'array',
        items: object({ versionNumber: int, description: str, createdAt: time }),
      },
      nextToken,
    }),
  ),
  exportJobTemplate: described('The job template with every version', templateExport),
  importJobTemplates: described(
    'The imported job templates, each at its latest version',
    object({ jobTemplates: { type: 'array', items: templateVersionRef } }),
  ),
  listDeadLetters: described(
    'A page of dead letters, newest first, each with every attempt',
    object({ executions: { type: 'array', items: deadLetter }, nextToken }),
  ),
  retryJobExecution: described('The new QUEUED execution', object({ execution })),
  jobSchedule: described('The job schedule', jobSchedule),
  listJobSchedules: described(
    'A page of job schedules, by id',
    object({ schedules: { type: 'array', items: jobSchedule }, nextToken }),
  ),
  listJobScheduleRuns: described(
    'A page of the ticks of the job schedule, newest first',
    object({ runs: { type: 'array', items: jobScheduleRun }, nextToken }),
  ),
  createdCredential: described(
    'The new device secret',
    object({
      thingName: str,
      credentialId: str,
      secret: { type: 'string', description: 'shown only in this response' },
      createdAt: int,
      revokedCredentialIds: stringList,
    }),
  ),
  listCredentials: described(
    'The device secrets of the thing, without the secrets',
    object({ credentials: { type: 'array', items: credential } }),
  ),
  revokedCredentials: described(
    'The ids of the secrets revoked',
    object({ revokedCredentialIds: stringList }),
  ),
  operatorKey: described('The operator key', operatorKey),
  listOperatorKeys: described(
    'A page of operator keys, without their secrets',
    object({ keys: { type: 'array', items: operatorKey }, nextToken }),
  ),
  createdOperatorKey: described(
    'The new operator key',
    object({
      accessKeyId: str,
      secretAccessKey: { type: 'string', description: 'shown only in this response' },
      token: { type: 'string', description: 'the bearer token, <accessKeyId>.<secret>; shown only here' },
      role: str,
      tenantId: str,
      description: str,
      createdAt: int,
    }),
  ),
  tenant: described('The tenant', tenant),
  putTenant: described(
    'The tenant (created: false when it existed; its description is replaced)',
    object({ tenantId: str, description: str, createdAt: int, created: bool }),
  ),
  listTenants: described(
    'A page of tenants, in id order',
    object({ tenants: { type: 'array', items: tenant }, nextToken }),
  ),
} as const satisfies Record<string, Schema>;

/** The body of every error; requestId is also in the x-amzn-RequestId header and the request's log lines. */
export const errorBody = object({ message: str, requestId: str });

const errorsByStatus = new Map<number, ErrorEntry[]>();
for (const entry of Object.values(ERRORS) as ErrorEntry[]) {
  errorsByStatus.set(entry.statusCode, [...(errorsByStatus.get(entry.statusCode) ?? []), entry]);
}

/** The error responses of one route, from the error catalog: each status with the error names it can carry. */
export function errorResponses(statuses: readonly number[]): Record<number, Schema> {
  return Object.fromEntries(
    statuses.map((status) => {
      const names = [...new Set((errorsByStatus.get(status) ?? []).map((e) => e.name))];
      return [
        status,
        {
          ...errorBody,
          description: `x-amzn-ErrorType: ${names.join(' or ')}`,
          headers: { 'x-amzn-ErrorType': { type: 'string', enum: names } },
        },
      ];
    }),
  );
}

/**
 * Which statuses a route can answer: every route can be malformed, unauthenticated, forbidden, throttled or fail;
 * a path parameter names something that may not exist; a write can conflict, meet a terminal or limited state, or
 * be too large.
 */
export function routeErrorStatuses(method: string, hasParams: boolean): number[] {
  const statuses = [400, 401, 403];
  if (hasParams) statuses.push(404);
  if (method !== 'GET' && method !== 'HEAD') statuses.push(409, 410, 413);
  statuses.push(429, 500);
  return statuses;
}
