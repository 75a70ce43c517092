/**
 * Glossary
 * - job: what an operator asks a set of things to do (a document plus rollout, timeout, retry, abort and
 *   scheduling configuration). Statuses: SCHEDULED, IN_PROGRESS, CANCELED, COMPLETED, DELETION_IN_PROGRESS.
 * - execution: one attempt of one job on one thing, keyed by (jobId, thingName, executionNumber). A retry or
 *   a re-join of a continuous job creates a new execution with the next executionNumber.
 * - pending: an execution that is QUEUED or IN_PROGRESS; every other status is terminal.
 * - head: the pending execution `$next` names for a thing: IN_PROGRESS before QUEUED, then by queuedAt, then
 *   by a monotonic sequence. notify-next is published when the head of a thing changes.
 * - rollout: creating a job's executions (notifying devices) no faster than its rollout configuration allows.
 * - timer: a deadline on an execution (queued, in-progress, step) after which a worker sets TIMED_OUT.
 */

export const EXECUTION_STATUSES = [
  'QUEUED',
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'REMOVED',
  'CANCELED',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

export const PENDING_STATUSES = ['QUEUED', 'IN_PROGRESS'] as const satisfies readonly ExecutionStatus[];
export const TERMINAL_STATUSES = [
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'REMOVED',
  'CANCELED',
] as const satisfies readonly ExecutionStatus[];

/** The order progress summaries (CLI, dashboard) list statuses in: finished first, as an operator reads them,
 * then running, then waiting. */
export const PROGRESS_ORDER = [
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'REJECTED',
  'CANCELED',
  'REMOVED',
  'IN_PROGRESS',
  'QUEUED',
] as const satisfies readonly ExecutionStatus[];

/** [protocol §4] Statuses a device may request through UpdateJobExecution. */
export const DEVICE_SETTABLE_STATUSES = [
  'IN_PROGRESS',
  'SUCCEEDED',
  'FAILED',
  'REJECTED',
] as const satisfies readonly ExecutionStatus[];
export type DeviceSettableStatus = (typeof DEVICE_SETTABLE_STATUSES)[number];

export const JOB_STATUSES = [
  'SCHEDULED',
  'IN_PROGRESS',
  'CANCELED',
  'COMPLETED',
  'DELETION_IN_PROGRESS',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export function isExecutionStatus(value: unknown): value is ExecutionStatus {
  return typeof value === 'string' && (EXECUTION_STATUSES as readonly string[]).includes(value);
}

export function isTerminal(status: ExecutionStatus): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function isPending(status: ExecutionStatus): boolean {
  return !isTerminal(status);
}

export function isDeviceSettable(status: string): status is DeviceSettableStatus {
  return (DEVICE_SETTABLE_STATUSES as readonly string[]).includes(status);
}

export type TransitionVerdict =
  { ok: true } | { ok: false; code: 'InvalidRequest' | 'InvalidStateTransition'; message: string };

/**
 * [protocol §4] The device-side transition table: a device may move a pending execution to any device-settable
 * status (IN_PROGRESS -> IN_PROGRESS included, it reports progress and resets the step timer); nothing leaves
 * a terminal status; asking for a service-only status is a bad request, whatever the current status.
 */
export function deviceTransition(from: ExecutionStatus, to: string): TransitionVerdict {
  if (!isDeviceSettable(to)) {
    return {
      ok: false,
      code: 'InvalidRequest',
      message: `status must be one of ${DEVICE_SETTABLE_STATUSES.join(', ')}; ${to} is set by the service only`,
    };
  }
  if (isTerminal(from)) {
    return {
      ok: false,
      code: 'InvalidStateTransition',
      message: `the execution is ${from}, a terminal status; it cannot move to ${to}`,
    };
  }
  return { ok: true };
}

/**
 * The jobProcessDetails counter of each status (things whose latest execution has it), in AWS's order. The SQL
 * that counts (src/store/states-sql.ts), the CLI and the dashboard are generated from this table.
 */
export const STATUS_COUNTERS = {
  CANCELED: 'numberOfCanceledThings',
  SUCCEEDED: 'numberOfSucceededThings',
  FAILED: 'numberOfFailedThings',
  REJECTED: 'numberOfRejectedThings',
  QUEUED: 'numberOfQueuedThings',
  IN_PROGRESS: 'numberOfInProgressThings',
  REMOVED: 'numberOfRemovedThings',
  TIMED_OUT: 'numberOfTimedOutThings',
} as const satisfies Record<ExecutionStatus, string>;
export type StatusCounter = (typeof STATUS_COUNTERS)[ExecutionStatus];
/** The eight jobProcessDetails counters. */
export type StatusCounts = Record<StatusCounter, number>;
