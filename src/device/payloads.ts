import {
  epochSeconds,
  type JobExecution,
  type JobExecutionState,
  type JobExecutionSummary,
  type NotifyNextEvent,
  type RejectedReply,
} from '../protocol/messages.js';
import type { MqttErrorCode } from '../protocol/errors.js';
import { isPending, type ExecutionStatus } from '../protocol/states.js';
import type { ExecutionRow } from '../store/rows.js';

/** The fields of an execution the device payloads are built from (a row, or the head joined to an outbox row). */
export interface ExecutionFacts {
  jobId: string;
  executionNumber: number;
  status: ExecutionStatus;
  statusDetails: Record<string, string>;
  queuedAt: Date;
  startedAt: Date | null;
  lastUpdatedAt: Date;
  versionNumber: number;
  timeoutAt: Date | null;
  /** The job document as stored (a JSON object in a string). */
  jobDocument?: string;
}

export function toSummary(row: ExecutionRow): JobExecutionSummary {
  const s: JobExecutionSummary = {
    jobId: row.jobId,
    queuedAt: epochSeconds(row.queuedAt),
    lastUpdatedAt: epochSeconds(row.lastUpdatedAt),
    versionNumber: row.versionNumber,
    executionNumber: row.executionNumber,
  };
  if (row.startedAt !== null) s.startedAt = epochSeconds(row.startedAt);
  return s;
}

function hasDetails(details: Record<string, string>): boolean {
  for (const _ in details) return true;
  return false;
}

/**
 * [protocol §3] The JobExecution of the device plane, in AWS's field order: integer epoch seconds, statusDetails and
 * startedAt only when present, the remaining time while a timer runs, jobDocument as a JSON object.
 */
export function toJobExecution(row: ExecutionFacts, now: Date, includeJobDocument: boolean): JobExecution {
  const e: JobExecution = {
    jobId: row.jobId,
    status: row.status,
    queuedAt: epochSeconds(row.queuedAt),
    lastUpdatedAt: epochSeconds(row.lastUpdatedAt),
    versionNumber: row.versionNumber,
    executionNumber: row.executionNumber,
  };
  if (hasDetails(row.statusDetails)) e.statusDetails = row.statusDetails;
  if (row.startedAt !== null) e.startedAt = epochSeconds(row.startedAt);
  if (row.timeoutAt !== null && isPending(row.status)) {
    e.approximateSecondsBeforeTimedOut = Math.max(
      0,
      Math.ceil((row.timeoutAt.getTime() - now.getTime()) / 1000),
    );
  }
  if (includeJobDocument && row.jobDocument !== undefined) e.jobDocument = JSON.parse(row.jobDocument);
  return e;
}

export function toExecutionState(row: {
  status: ExecutionStatus | string;
  statusDetails?: Record<string, string> | undefined;
  versionNumber: number;
}): JobExecutionState {
  const s: JobExecutionState = { status: row.status as ExecutionStatus, versionNumber: row.versionNumber };
  if (row.statusDetails !== undefined && hasDetails(row.statusDetails)) s.statusDetails = row.statusDetails;
  return s;
}

/** notify-next: the head with its document, or `{timestamp}` alone when nothing is pending ([protocol §3]). */
export function notifyNextPayload(head: ExecutionFacts | null, at: Date, now: Date): NotifyNextEvent {
  const payload: NotifyNextEvent = { timestamp: epochSeconds(at) };
  if (head !== null) payload.execution = toJobExecution(head, now, true);
  return payload;
}

export function rejectedPayload(
  code: MqttErrorCode,
  message: string,
  clientToken: string | undefined,
  now: Date,
  executionState?: JobExecutionState,
): RejectedReply {
  const r: RejectedReply = { code, message, timestamp: epochSeconds(now) };
  if (clientToken !== undefined) r.clientToken = clientToken;
  if (executionState !== undefined) r.executionState = executionState;
  return r;
}
