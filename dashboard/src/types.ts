/** The shapes the dashboard reads: the AWS IoT control-plane responses fleetjobs serves (docs/api.md). */

import {
  EXECUTION_STATUSES,
  PROGRESS_ORDER,
  STATUS_COUNTERS,
  type ExecutionStatus,
  type JobStatus,
  type StatusCounts,
} from '../../src/protocol/states';

// One source of truth for statuses and their counters: the server's protocol table (pure, no I/O).
export { EXECUTION_STATUSES, PROGRESS_ORDER, STATUS_COUNTERS, type ExecutionStatus, type JobStatus };

/** jobProcessDetails: a counter per execution status (absent ones are 0). */
export type JobProcessDetails = Partial<StatusCounts>;

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

export type ScheduleState = 'ENABLED' | 'PAUSED';

export interface JobSchedule {
  scheduleId: string;
  description?: string;
  scheduleExpression: string;
  scheduleExpressionTimezone: string;
  jobTemplateArn: string;
  concurrencyPolicy: 'SKIP' | 'ALLOW';
  state: ScheduleState;
  nextRunAt?: number;
  version: number;
}

export interface JobScheduleRun {
  scheduledAt: number;
  jobId: string;
  outcome: 'CREATED' | 'SKIPPED' | 'FAILED';
  reason?: string;
  jobStatus?: JobStatus;
  createdAt: number;
}

/** One attempt of a dead letter's retry chain, first attempt first. */
export interface Attempt extends ExecutionSummary {
  statusDetails?: { detailsMap?: Record<string, string> };
}

/** An execution that failed after its last retry (ListDeadLetters). */
export interface DeadLetter extends Attempt {
  jobId: string;
  thingName: string;
  jobStatus: JobStatus;
  attempts: Attempt[];
}
