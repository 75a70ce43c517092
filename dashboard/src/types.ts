/** The shapes the dashboard reads: the AWS IoT control-plane responses fleetjobs serves (docs/api.md). */

export const EXECUTION_STATUSES = [
  'QUEUED',
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'CANCELED',
  'REMOVED',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export type JobStatus = 'SCHEDULED' | 'IN_PROGRESS' | 'CANCELED' | 'COMPLETED' | 'DELETION_IN_PROGRESS';

export interface JobProcessDetails {
  numberOfCanceledThings?: number;
  numberOfSucceededThings?: number;
  numberOfFailedThings?: number;
  numberOfRejectedThings?: number;
  numberOfQueuedThings?: number;
  numberOfInProgressThings?: number;
  numberOfRemovedThings?: number;
  numberOfTimedOutThings?: number;
}

/** The jobProcessDetails counter of each execution status. */
export const COUNTER: Record<ExecutionStatus, keyof JobProcessDetails> = {
  QUEUED: 'numberOfQueuedThings',
  IN_PROGRESS: 'numberOfInProgressThings',
  SUCCEEDED: 'numberOfSucceededThings',
  FAILED: 'numberOfFailedThings',
  TIMED_OUT: 'numberOfTimedOutThings',
  REJECTED: 'numberOfRejectedThings',
  CANCELED: 'numberOfCanceledThings',
  REMOVED: 'numberOfRemovedThings',
};

/** A row of the jobs list: ListJobs' summary, or a `jobProgress` event, with counters when known. */
export interface JobSummary {
  jobId: string;
  status: JobStatus;
  targetSelection?: string;
  createdAt?: number;
  lastUpdatedAt?: number;
  completedAt?: number;
  jobProcessDetails?: JobProcessDetails;
}

export interface Job extends JobSummary {
  description?: string;
  targets?: string[];
  forceCanceled?: boolean;
  reasonCode?: string;
  comment?: string;
  jobTemplateArn?: string;
  documentParameters?: Record<string, string>;
}

export interface ExecutionSummary {
  status: ExecutionStatus;
  queuedAt?: number;
  startedAt?: number;
  lastUpdatedAt?: number;
  executionNumber?: number;
  retryAttempt?: number;
}

export interface Execution extends ExecutionSummary {
  jobId: string;
  thingArn?: string;
  forceCanceled?: boolean;
  versionNumber?: number;
  approximateSecondsBeforeTimedOut?: number;
  statusDetails?: { detailsMap?: Record<string, string> };
}

export interface Thing {
  thingName: string;
  thingArn?: string;
  thingTypeName?: string;
  attributes?: Record<string, string>;
  version?: number;
}

export interface TemplateParameter {
  key: string;
  description?: string;
  regex?: string;
  example?: string;
  optional?: boolean;
}

export interface JobTemplate {
  jobTemplateId: string;
  jobTemplateArn?: string;
  description?: string;
  document?: string;
  documentParameters?: TemplateParameter[];
}

/** The thing name at the end of a thing ARN. */
export function thingNameOf(arn: string | undefined): string {
  return arn === undefined ? '' : arn.slice(arn.lastIndexOf('/') + 1);
}
