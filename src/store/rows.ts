import type { ExecutionStatus, JobStatus } from '../protocol/states.js';

/** Row types as the store returns them (camelCase keys, int8 as number, timestamptz as Date). */
export interface ThingRow {
  thingName: string;
  thingId: string;
  thingTypeName: string | null;
  attributes: Record<string, string>;
  version: number;
  createdAt: Date;
}

export interface ThingGroupRow {
  thingGroupName: string;
  thingGroupId: string;
  description: string | null;
  attributes: Record<string, string>;
  version: number;
  createdAt: Date;
}

export type TargetSelection = 'SNAPSHOT' | 'CONTINUOUS';

/**
 * One execution whose status was just set (or which was just created, previousStatus null), as a guarded change
 * returns it to the write funnel (funnel.ts).
 */
export interface ExecutionChange {
  jobId: string;
  thingName: string;
  executionNumber: number;
  status: ExecutionStatus;
  previousStatus: ExecutionStatus | null;
  /**
   * The execution was deleted (DeleteJob, DeleteJobExecution): status and previousStatus are the status it had,
   * and it no longer counts as pending.
   */
  deleted?: boolean;
}

export interface JobRow {
  jobId: string;
  status: JobStatus;
  targetSelection: TargetSelection;
  targets: string[];
  document: string;
  documentSource: string | null;
  description: string | null;
  jobTemplateArn: string | null;
  /** The template version the job was created from (fleetjobs extension). */
  jobTemplateVersion: number | null;
  documentParameters: Record<string, string> | null;
  timeoutConfig: TimeoutConfig | null;
  retryConfig: RetryConfig | null;
  rolloutConfig: Record<string, unknown> | null;
  abortConfig: Record<string, unknown> | null;
  schedulingConfig: Record<string, unknown> | null;
  presignedUrlConfig: Record<string, unknown> | null;
  namespaceId: string | null;
  /** fleetjobs extension: orders a thing's pending executions (higher first); null when not given. */
  priority: number | null;
  forceCanceled: boolean;
  reasonCode: string | null;
  comment: string | null;
  rolloutPending: boolean;
  version: number;
  createdAt: Date;
  lastUpdatedAt: Date;
  completedAt: Date | null;
}

export interface TimeoutConfig {
  inProgressTimeoutInMinutes?: number;
  /** fleetjobs extension: a QUEUED execution not started within this many minutes is TIMED_OUT. */
  queuedTimeoutInMinutes?: number;
}

export interface RetryConfig {
  criteriaList: { failureType: 'FAILED' | 'TIMED_OUT' | 'ALL'; numberOfRetries: number }[];
  retryDelaySeconds?: number;
  backoffFactor?: number;
  maxDelaySeconds?: number;
}

export interface ExecutionRow {
  jobId: string;
  thingName: string;
  executionNumber: number;
  status: ExecutionStatus;
  versionNumber: number;
  retryAttempt: number;
  statusDetails: Record<string, string>;
  forceCanceled: boolean;
  queuedAt: Date;
  startedAt: Date | null;
  lastUpdatedAt: Date;
  seq: number;
  queuedDeadline: Date | null;
  inProgressDeadline: Date | null;
  stepDeadline: Date | null;
  timeoutAt: Date | null;
}

export const EXECUTION_COLUMNS = `job_id, thing_name, execution_number, status, version_number, retry_attempt,
  status_details, force_canceled, queued_at, started_at, last_updated_at, seq, queued_deadline,
  in_progress_deadline, step_deadline, timeout_at`;

export const JOB_COLUMNS = `job_id, status, target_selection, targets, document, document_source, description,
  job_template_arn, document_parameters, timeout_config, retry_config, rollout_config, abort_config,
  scheduling_config, presigned_url_config, namespace_id, priority, job_template_version, force_canceled, reason_code, comment, rollout_pending,
  version, created_at, last_updated_at, completed_at`;
