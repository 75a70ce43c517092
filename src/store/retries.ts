import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import type { RetryConfig, ExecutionChange } from './rows.js';
import { LIMITS } from '../protocol/limits.js';

/** A retry to create: the next execution of a job on a thing, with its retryAttempt. */
export interface RetryItem {
  jobId: string;
  thingName: string;
  retryAttempt: number;
}

interface Candidate {
  jobId: string;
  thingName: string;
  executionNumber: number;
  status: 'FAILED' | 'TIMED_OUT';
  retryAttempt: number;
  /** Earlier executions of the same retry chain that ended FAILED / TIMED_OUT (each caused one retry). */
  failedBefore: number;
  timedOutBefore: number;
  retryConfig: RetryConfig;
}

/**
 * The FAILED / TIMED_OUT executions among the given ones whose job is IN_PROGRESS and has a retry
 * configuration, with the retries already spent in their chain. A chain is the first attempt and the retries
 * that followed it: executions (n - retryAttempt) .. n of the thing.
 */
async function selectRetryCandidates(
  tx: Queryable,
  changes: readonly ExecutionChange[],
): Promise<Candidate[]> {
  return tx.query<Candidate>(
    `SELECT c.job_id, c.thing_name, c.execution_number, c.status, c.retry_attempt, j.retry_config,
       (SELECT count(*) FROM job_executions p
        WHERE p.job_id = c.job_id AND p.thing_name = c.thing_name AND p.status = 'FAILED'
          AND p.execution_number >= c.execution_number - c.retry_attempt
          AND p.execution_number < c.execution_number) AS failed_before,
       (SELECT count(*) FROM job_executions p
        WHERE p.job_id = c.job_id AND p.thing_name = c.thing_name AND p.status = 'TIMED_OUT'
          AND p.execution_number >= c.execution_number - c.retry_attempt
          AND p.execution_number < c.execution_number) AS timed_out_before
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(job_id, thing_name, execution_number)
     JOIN jobs j ON j.job_id = k.job_id
     -- One primary-key lookup per change, never a hash join over every execution.
     JOIN LATERAL (
       SELECT x.job_id, x.thing_name, x.execution_number, x.status, x.retry_attempt FROM job_executions x
       WHERE x.job_id = k.job_id AND x.thing_name = k.thing_name AND x.execution_number = k.execution_number
       LIMIT 1) c ON true
     WHERE c.status IN ('FAILED', 'TIMED_OUT') AND j.status = 'IN_PROGRESS' AND j.retry_config IS NOT NULL`,
    [changes.map((c) => c.jobId), changes.map((c) => c.thingName), changes.map((c) => c.executionNumber)],
  );
}

/**
 * [protocol §4] Whether a failure is retried: every criterion that matches its type (the type itself or ALL) still
 * has retries left (ALL counts every retry, a typed criterion the retries its type caused), and the chain
 * stays within LIMITS.MAX_RETRIES_TOTAL. REJECTED never reaches here.
 */
export function shouldRetry(c: Omit<Candidate, 'jobId' | 'thingName' | 'executionNumber'>): boolean {
  if (c.retryAttempt >= LIMITS.MAX_RETRIES_TOTAL) return false;
  const matching = (c.retryConfig.criteriaList ?? []).filter(
    (k) => k.failureType === c.status || k.failureType === 'ALL',
  );
  if (matching.length === 0) return false;
  return matching.every((k) => {
    const used =
      k.failureType === 'ALL' ? c.retryAttempt : c.status === 'FAILED' ? c.failedBefore : c.timedOutBefore;
    return used < k.numberOfRetries;
  });
}

/**
 * fleetjobs extension: the delay before retry number `attempt` (1 for the first), in ms, with full jitter:
 * uniform in [0, min(maxDelaySeconds, retryDelaySeconds * backoffFactor^(attempt-1))]. 0 without a delay.
 */
export function retryDelayMs(config: RetryConfig, attempt: number, random: () => number): number {
  const base = config.retryDelaySeconds ?? 0;
  if (base <= 0) return 0;
  const grown = base * Math.pow(config.backoffFactor ?? 1, attempt - 1);
  const cap = Math.min(grown, config.maxDelaySeconds ?? Number.POSITIVE_INFINITY);
  return Math.floor(random() * cap * 1000);
}

/**
 * Creates new QUEUED executions (next executionNumber, version 1) for the given retries, unless the thing has
 * a pending execution of the job already or the job is no longer IN_PROGRESS. The things must be locked (lockThings). The queued deadline comes
 * from the job's timeoutConfig.queuedTimeoutInMinutes, as at creation.
 */
export async function insertRetryExecutions(
  tx: Queryable,
  items: readonly RetryItem[],
  now: Date,
): Promise<ExecutionChange[]> {
  if (items.length === 0) return [];
  const rows = await tx.query<{ jobId: string; thingName: string; executionNumber: number }>(
    `INSERT INTO job_executions (job_id, thing_name, execution_number, status, retry_attempt, queued_at,
       last_updated_at, queued_deadline, priority)
     SELECT k.job_id, k.thing_name,
       coalesce((SELECT max(e.execution_number) FROM job_executions e
                 WHERE e.job_id = k.job_id AND e.thing_name = k.thing_name), 0) + 1,
       'QUEUED', k.retry_attempt, $4::timestamptz, $4::timestamptz,
       $4::timestamptz + make_interval(mins => (j.timeout_config ->> 'queuedTimeoutInMinutes')::int),
       coalesce(j.priority, 0)
     FROM unnest($1::text[], $2::text[], $3::int[]) AS k(job_id, thing_name, retry_attempt)
     JOIN jobs j ON j.job_id = k.job_id
     WHERE j.status = 'IN_PROGRESS'
       AND NOT EXISTS (SELECT 1 FROM job_executions p WHERE p.job_id = k.job_id AND p.thing_name = k.thing_name
                         AND p.status IN (${PENDING_SQL}))
     ORDER BY k.thing_name
     RETURNING job_id, thing_name, execution_number`,
    [items.map((i) => i.jobId), items.map((i) => i.thingName), items.map((i) => i.retryAttempt), now],
  );
  return rows.map((r) => ({
    jobId: r.jobId,
    thingName: r.thingName,
    executionNumber: r.executionNumber,
    status: 'QUEUED',
    previousStatus: null,
  }));
}

/** Records retries to be created by the retry worker once due. */
export async function insertDelayedRetries(
  tx: Queryable,
  items: readonly (RetryItem & { dueAt: Date })[],
): Promise<void> {
  if (items.length === 0) return;
  await tx.query(
    `INSERT INTO execution_retries (job_id, thing_name, retry_attempt, due_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[])
     ON CONFLICT (job_id, thing_name) DO NOTHING`,
    [
      items.map((i) => i.jobId),
      items.map((i) => i.thingName),
      items.map((i) => i.retryAttempt),
      items.map((i) => i.dueAt.toISOString()),
    ],
  );
}

/** Of the given jobs, those IN_PROGRESS with a retry configuration. */
async function selectJobsWithRetries(tx: Queryable, jobIds: readonly string[]): Promise<string[]> {
  const rows = await tx.query<{ jobId: string }>(
    `SELECT job_id FROM jobs WHERE job_id = ANY($1::text[]) AND status = 'IN_PROGRESS' AND retry_config IS NOT NULL`,
    [jobIds],
  );
  return rows.map((r) => r.jobId);
}

/**
 * Decides the retries for a set of execution changes: immediate ones are created here (returned as changes),
 * delayed ones recorded for the retry worker. Called by the write funnel (funnel.ts), things locked.
 */
export async function queueRetries(
  tx: Queryable,
  changes: readonly ExecutionChange[],
  now: Date,
  random: () => number = Math.random,
): Promise<ExecutionChange[]> {
  const all = changes.filter((c) => c.status === 'FAILED' || c.status === 'TIMED_OUT');
  if (all.length === 0) return [];
  const retrying = new Set(await selectJobsWithRetries(tx, [...new Set(all.map((c) => c.jobId))]));
  const failed = all.filter((c) => retrying.has(c.jobId));
  if (failed.length === 0) return [];
  const candidates = await selectRetryCandidates(tx, failed);
  const immediate: RetryItem[] = [];
  const delayed: (RetryItem & { dueAt: Date })[] = [];
  for (const c of candidates) {
    if (!shouldRetry(c)) continue;
    const item = { jobId: c.jobId, thingName: c.thingName, retryAttempt: c.retryAttempt + 1 };
    const delay = retryDelayMs(c.retryConfig, item.retryAttempt, random);
    if ((c.retryConfig.retryDelaySeconds ?? 0) > 0) {
      delayed.push({ ...item, dueAt: new Date(now.getTime() + delay) });
    } else {
      immediate.push(item);
    }
  }
  await insertDelayedRetries(tx, delayed);
  return insertRetryExecutions(tx, immediate, now);
}

/** The retries due at `now`, oldest first, at most limit. */
export async function selectDueRetries(tx: Queryable, now: Date, limit: number): Promise<RetryItem[]> {
  return tx.query<RetryItem>(
    `SELECT job_id, thing_name, retry_attempt FROM execution_retries WHERE due_at <= $1 ORDER BY due_at LIMIT $2`,
    [now, limit],
  );
}

/**
 * Deletes the given due retries and returns those it deleted; the caller creates their executions in the same
 * transaction (things locked first), so a retry is created exactly once whatever instance takes it.
 */
export async function deleteDueRetries(
  tx: Queryable,
  items: readonly RetryItem[],
  now: Date,
): Promise<RetryItem[]> {
  if (items.length === 0) return [];
  return tx.query<RetryItem>(
    `DELETE FROM execution_retries r USING unnest($1::text[], $2::text[]) AS k(job_id, thing_name)
     WHERE r.job_id = k.job_id AND r.thing_name = k.thing_name AND r.due_at <= $3
     RETURNING r.job_id, r.thing_name, r.retry_attempt`,
    [items.map((i) => i.jobId), items.map((i) => i.thingName), now],
  );
}

/** Whether a job still has retries waiting (it cannot complete before they are created). */
export const PENDING_RETRIES_SQL = `EXISTS (SELECT 1 FROM execution_retries r WHERE r.job_id = j.job_id)`;
