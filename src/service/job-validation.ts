import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { buildArn, parseTarget } from '../protocol/arns.js';
import type { RetryConfig } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { CronSyntaxError, parseCron } from './cron.js';

/**
 * The checks on job fields that a JSON schema cannot express (the HTTP schemas in src/http/schemas check types,
 * ranges and patterns first): targets that parse and name our account, a document that is a JSON object,
 * retry totals, schedule times, maintenance-window cron expressions. Each failure is an InvalidRequest naming
 * the field and the fix.
 */

function invalid(message: string): never {
  throw new FleetJobsError('InvalidRequest', message);
}

export interface ParsedTargets {
  /** Targets as full ARNs, duplicates removed, in the order given. */
  arns: string[];
  things: string[];
  groups: string[];
}

export function parseTargets(deps: ServiceDeps, targets: readonly string[]): ParsedTargets {
  if (targets.length === 0) invalid('targets must name at least one thing or thing group');
  const arns: string[] = [];
  const things: string[] = [];
  const groups: string[] = [];
  const seen = new Set<string>();
  for (const t of targets) {
    const parsed = parseTarget(t, deps.arn);
    if ('error' in parsed) invalid(parsed.error);
    const arn = buildArn(deps.arn, parsed.type, parsed.name);
    if (seen.has(arn)) continue;
    seen.add(arn);
    arns.push(arn);
    (parsed.type === 'thing' ? things : groups).push(parsed.name);
  }
  if (arns.length > LIMITS.MAX_TARGETS_PER_JOB) {
    invalid(`a job names at most ${LIMITS.MAX_TARGETS_PER_JOB} targets; use thing groups for more things`);
  }
  return { arns, things, groups };
}

export function parseDocument(document: string): Record<string, unknown> {
  if (document.length > LIMITS.MAX_JOB_DOCUMENT_CHARS) {
    invalid(`document is ${document.length} characters; the limit is ${LIMITS.MAX_JOB_DOCUMENT_CHARS}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    invalid('document must be a JSON object in a string, such as "{\\"operation\\":\\"reboot\\"}"');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    invalid('document must be a JSON object in a string, such as "{\\"operation\\":\\"reboot\\"}"');
  }
  return parsed as Record<string, unknown>;
}

export function checkRetryConfig(retry: RetryConfig | undefined, hasTimeout: boolean): void {
  if (!retry) return;
  const types = new Set<string>();
  let total = 0;
  for (const c of retry.criteriaList) {
    if (types.has(c.failureType)) {
      invalid(`jobExecutionsRetryConfig.criteriaList names failureType ${c.failureType} twice`);
    }
    types.add(c.failureType);
    total += c.numberOfRetries;
  }
  if (types.has('ALL') && types.size > 1) {
    invalid('jobExecutionsRetryConfig.criteriaList: ALL cannot be combined with FAILED or TIMED_OUT');
  }
  if (total > LIMITS.MAX_RETRIES_TOTAL) {
    invalid(
      `jobExecutionsRetryConfig allows at most ${LIMITS.MAX_RETRIES_TOTAL} retries in all; it asks for ${total}`,
    );
  }
  if (types.has('TIMED_OUT') && !hasTimeout) {
    invalid(
      'retrying TIMED_OUT executions needs a timeoutConfig (inProgressTimeoutInMinutes or queuedTimeoutInMinutes)',
    );
  }
  if (
    retry.retryDelaySeconds !== undefined &&
    retry.maxDelaySeconds !== undefined &&
    retry.maxDelaySeconds < retry.retryDelaySeconds
  ) {
    invalid('jobExecutionsRetryConfig.maxDelaySeconds must not be less than retryDelaySeconds');
  }
}

function hasAtMostDecimals(value: number, decimals: number): boolean {
  const scaled = value * 10 ** decimals;
  return Math.abs(scaled - Math.round(scaled)) < 1e-6;
}

export function checkRolloutConfig(rollout: Record<string, unknown> | undefined): void {
  const exp = rollout?.exponentialRate as
    { incrementFactor: number; rateIncreaseCriteria: Record<string, unknown> } | undefined;
  if (!exp) return;
  if (!hasAtMostDecimals(exp.incrementFactor, 1)) {
    invalid(
      'jobExecutionsRolloutConfig.exponentialRate.incrementFactor has at most one decimal, such as 1.5',
    );
  }
  const criteria = Object.keys(exp.rateIncreaseCriteria);
  if (criteria.length !== 1) {
    invalid(
      'jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria needs exactly one of numberOfNotifiedThings, numberOfSucceededThings',
    );
  }
}

export function checkAbortConfig(abort: Record<string, unknown> | undefined): void {
  const list = (abort?.criteriaList ?? []) as { thresholdPercentage: number; failureType: string }[];
  const seen = new Set<string>();
  for (const c of list) {
    if (!hasAtMostDecimals(c.thresholdPercentage, 2)) {
      invalid('abortConfig.criteriaList.thresholdPercentage has at most two decimals, such as 12.5');
    }
    if (seen.has(c.failureType)) invalid(`abortConfig.criteriaList names failureType ${c.failureType} twice`);
    seen.add(c.failureType);
  }
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?$/;

/** AWS schedule times look like 2026-02-16T13:00 (UTC when no offset is given). */
export function parseScheduleTime(field: string, value: string): Date {
  const m = DATE_TIME_RE.exec(value);
  const date = m ? new Date(m[3] ? value : `${value}Z`) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    invalid(`${field} must be a date and time such as 2026-02-16T13:00 (UTC unless an offset is given)`);
  }
  return date;
}

/** A maintenance-window start: an AWS cron(min hour day month weekday year) or a five-field cron expression. */
export function checkCron(field: string, value: string, now: Date): void {
  try {
    parseCron(value, now).next();
  } catch (err) {
    if (!(err instanceof CronSyntaxError)) throw err;
    invalid(`${field} is not a cron expression (${err.message}); use cron(0 1 ? * SUN *) or 0 1 * * SUN`);
  }
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export function checkSchedulingConfig(scheduling: Record<string, unknown> | undefined, now: Date): void {
  if (!scheduling) return;
  const start =
    typeof scheduling.startTime === 'string'
      ? parseScheduleTime('schedulingConfig.startTime', scheduling.startTime)
      : undefined;
  const end =
    typeof scheduling.endTime === 'string'
      ? parseScheduleTime('schedulingConfig.endTime', scheduling.endTime)
      : undefined;
  if (start && start.getTime() > now.getTime() + 366 * DAY) {
    invalid('schedulingConfig.startTime is at most one year ahead');
  }
  if (end) {
    if (end.getTime() > now.getTime() + 2 * 366 * DAY)
      invalid('schedulingConfig.endTime is at most two years ahead');
    const from = Math.max(start?.getTime() ?? now.getTime(), now.getTime());
    if (end.getTime() < from + 30 * MINUTE) {
      invalid('schedulingConfig.endTime must be at least 30 minutes after startTime and after now');
    }
  }
  if (scheduling.endBehavior !== undefined && !end) invalid('schedulingConfig.endBehavior needs an endTime');
  const windows = (scheduling.maintenanceWindows ?? []) as { startTime: string }[];
  windows.forEach((w, i) =>
    checkCron(`schedulingConfig.maintenanceWindows[${i}].startTime`, w.startTime, now),
  );
}

const PARAMETER_RE = /\$\{aws:iot:parameter:([a-zA-Z0-9_-]+)\}/g;

/** The parameter names a document's `${aws:iot:parameter:name}` placeholders use, once each. */
export function documentPlaceholders(document: string): string[] {
  return [...new Set([...document.matchAll(PARAMETER_RE)].map((m) => m[1] as string))];
}

export interface DeclaredParameter {
  key: string;
  description?: string;
  regex?: string;
  example?: string;
  optional?: boolean;
}

/**
 * Substitutes `${aws:iot:parameter:name}` with the given values, checked against the template's declared
 * parameters (its documentParameters, or else every placeholder of its document, all required). Values are
 * JSON-string-escaped: placeholders sit inside JSON strings, and a quote in a value must not break the document.
 */
export function substituteParameters(
  document: string,
  declared: readonly DeclaredParameter[],
  values: Record<string, string>,
): string {
  const byKey = new Map(declared.map((p) => [p.key, p]));
  for (const [key, value] of Object.entries(values)) {
    const p = byKey.get(key);
    if (!p) {
      invalid(
        `documentParameters.${key} is not a parameter of the job template; its parameters are ${[...byKey.keys()].join(', ') || 'none'}`,
      );
    }
    if (value.length > LIMITS.MAX_DOCUMENT_PARAMETER_VALUE_CHARS) {
      invalid(
        `documentParameters.${key} is longer than ${LIMITS.MAX_DOCUMENT_PARAMETER_VALUE_CHARS} characters`,
      );
    }
    if (p.regex !== undefined && !new RegExp(`^(?:${p.regex})$`, 'u').test(value)) {
      invalid(`documentParameters.${key} does not match ${p.regex}`);
    }
  }
  for (const p of declared) {
    if (!p.optional && values[p.key] === undefined) {
      invalid(`documentParameters.${p.key} is required by the job template`);
    }
  }
  return document.replace(PARAMETER_RE, (_, key: string) => JSON.stringify(values[key] ?? '').slice(1, -1));
}
