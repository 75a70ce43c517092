import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import { LIMITS } from '../protocol/limits.js';
import { completeBareEvents, insertJobEvents } from './events.js';
import { PENDING_RETRIES_SQL } from './retries.js';
import { advanceFanout, lockFanoutChunk } from './outbox.js';
import { lockThings } from './things.js';

/** SQL for the data-plane JobExecutionSummary of alias e (integer epoch seconds, startedAt only once started). */
export const SUMMARY_SQL = `jsonb_strip_nulls(jsonb_build_object(
  'jobId', e.job_id,
  'queuedAt', floor(extract(epoch FROM e.queued_at))::bigint,
  'startedAt', floor(extract(epoch FROM e.started_at))::bigint,
  'lastUpdatedAt', floor(extract(epoch FROM e.last_updated_at))::bigint,
  'versionNumber', e.version_number,
  'executionNumber', e.execution_number))`;

/**
 * [protocol §3] The head ordering: IN_PROGRESS before QUEUED, then the job's priority (fleetjobs extension, higher
 * first; 0 without one, so AWS order is kept), then queuedAt, then the monotonic sequence.
 */
export const HEAD_ORDER_SQL = `(e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq`;

/**
 * notify rows for things whose pending set gained or lost a member, payload as of this transaction, in one
 * statement: per thing, the first MAX_PENDING_LIST pending executions in head order straight off the head-order
 * index, so a thing with a long queue costs no more than one with ten.
 */
export async function insertNotifyForThings(
  tx: Queryable,
  thingNames: readonly string[],
  now: Date,
): Promise<void> {
  if (thingNames.length === 0) return;
  await tx.query(
    `WITH t AS (SELECT DISTINCT unnest($1::text[]) AS thing_name),
     top AS (
       SELECT t.thing_name,
              CASE WHEN e.status = 'IN_PROGRESS' THEN 'IN_PROGRESS' ELSE 'QUEUED' END AS list,
              ${SUMMARY_SQL} AS summary,
              e.ord
       FROM t CROSS JOIN LATERAL (
         SELECT e.*, row_number() OVER (ORDER BY ${HEAD_ORDER_SQL}) AS ord FROM job_executions e
         WHERE e.thing_name = t.thing_name AND e.status IN (${PENDING_SQL})
         ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST}) e
     ),
     lists AS (SELECT thing_name, list, jsonb_agg(summary ORDER BY ord) AS items FROM top GROUP BY thing_name, list),
     jobs AS (SELECT thing_name, jsonb_object_agg(list, items) AS jobs FROM lists GROUP BY thing_name)
     INSERT INTO outbox (kind, thing_name, payload, created_at)
     SELECT 'notify', t.thing_name,
       jsonb_build_object('timestamp', floor(extract(epoch FROM $2::timestamptz))::bigint,
                          'jobs', coalesce(jobs.jobs, '{}'::jsonb)),
       $2
     FROM t LEFT JOIN jobs USING (thing_name)
     ORDER BY t.thing_name`,
    [thingNames, now],
  );
}

/**
 * notify-next rows for things whose head (one index probe per thing) differs from the one last announced. The
 * row names the new head; the dispatcher reads the execution and its document when it publishes, so the outbox
 * never holds a copy of a 32 KB document per thing.
 */
export async function insertNotifyNextForThings(
  tx: Queryable,
  thingNames: readonly string[],
  now: Date,
): Promise<void> {
  if (thingNames.length === 0) return;
  await tx.query(
    `WITH heads AS (
       SELECT t.thing_name, h.job_id, h.execution_number
       FROM (SELECT DISTINCT unnest($1::text[]) AS thing_name) t
       LEFT JOIN LATERAL (
         SELECT e.job_id, e.execution_number FROM job_executions e
         WHERE e.thing_name = t.thing_name AND e.status IN (${PENDING_SQL})
         ORDER BY ${HEAD_ORDER_SQL} LIMIT 1) h ON true
     ), changed AS (
       UPDATE things th
       SET notified_next_job_id = heads.job_id, notified_next_execution_number = heads.execution_number
       FROM heads
       WHERE th.thing_name = heads.thing_name
         AND (th.notified_next_job_id IS DISTINCT FROM heads.job_id
           OR th.notified_next_execution_number IS DISTINCT FROM heads.execution_number)
       RETURNING th.thing_name, heads.job_id, heads.execution_number
     )
     INSERT INTO outbox (kind, thing_name, job_id, execution_number, created_at)
     SELECT 'notify-next', thing_name, job_id, execution_number, $2 FROM changed ORDER BY thing_name`,
    [thingNames, now],
  );
}

/** A SNAPSHOT job j whose rollout is done, with no pending execution and no retry waiting: ready to complete. */
const JOB_DONE_SQL = `j.status = 'IN_PROGRESS' AND j.target_selection = 'SNAPSHOT' AND NOT j.rollout_pending
  AND NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.job_id = j.job_id AND e.status IN (${PENDING_SQL}))
  AND NOT ${PENDING_RETRIES_SQL}`;

/**
 * Completes SNAPSHOT jobs whose rollout is done and whose executions are all terminal, with a `completed` event.
 * The check runs first without a lock: most changes leave executions pending, and locking the job row on every
 * device update would serialize all of a job's devices until commit. Only jobs that look done are locked and
 * re-checked under the lock. Two transactions ending a job's last two executions at once may each still see the
 * other's as pending; the rollout worker's rollup sweep (selectJobsReadyToComplete) completes such a job on its
 * next tick.
 */
export async function completeJobsIfDone(
  tx: Queryable,
  jobIds: readonly string[],
  now: Date,
): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const candidates = await tx.query<{ jobId: string }>(
    `SELECT j.job_id FROM jobs j WHERE j.job_id = ANY($1::text[]) AND ${JOB_DONE_SQL}`,
    [jobIds],
  );
  if (candidates.length === 0) return [];
  const ids = candidates.map((c) => c.jobId);
  await tx.query(`SELECT 1 FROM jobs WHERE job_id = ANY($1::text[]) ORDER BY job_id FOR UPDATE`, [ids]);
  const rows = await tx.query<{ jobId: string }>(
    `UPDATE jobs j SET status = 'COMPLETED', completed_at = $2, last_updated_at = $2, version = version + 1
     WHERE j.job_id = ANY($1::text[]) AND ${JOB_DONE_SQL}
     RETURNING j.job_id`,
    [ids, now],
  );
  const completed = rows.map((r) => r.jobId);
  await insertJobEvents(tx, completed, 'completed', now);
  return completed;
}

/** Jobs ready to complete that no change completed (the race described at completeJobsIfDone), oldest first. */
export async function selectJobsReadyToComplete(db: Queryable, limit: number): Promise<string[]> {
  const rows = await db.query<{ jobId: string }>(
    `SELECT j.job_id FROM jobs j WHERE ${JOB_DONE_SQL} ORDER BY j.created_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.jobId);
}

/**
 * Expands the next chunk (up to `size` things of each list) of the oldest fanout row into notify and
 * notify-next rows, and completes up to `size` bare events, in the caller's transaction; the fanout row records
 * the chunk as expanded. The chunk's things are locked in name order first, like every writer locks them, so
 * payloads and head comparisons are those of the current committed state of each thing. Returns false when
 * there was nothing left to do (or other dispatchers hold all of it).
 */
export async function expandFanoutChunk(tx: Queryable, size: number, now: Date): Promise<boolean> {
  const chunk = await lockFanoutChunk(tx, size);
  if (chunk !== undefined) {
    await lockThings(tx, [...new Set([...chunk.notifyThings, ...chunk.notifyNextThings])].sort());
    await insertNotifyForThings(tx, chunk.notifyThings, now);
    await insertNotifyNextForThings(tx, chunk.notifyNextThings, now);
    await advanceFanout(tx, chunk);
  }
  const events = await completeBareEvents(tx, size, now);
  return chunk !== undefined || events > 0;
}
