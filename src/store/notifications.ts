import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import { EVENTS_ROOT } from '../protocol/topics.js';
import { PENDING_RETRIES_SQL } from './retries.js';
import { advanceFanout, lockFanoutChunk } from './outbox.js';
import { lockThings } from './things.js';

/**
 * [protocol §3] The head ordering: IN_PROGRESS before QUEUED, then the job's priority (fleetjobs extension, higher
 * first; 0 without one, so AWS order is kept), then queuedAt, then the monotonic sequence.
 */
export const HEAD_ORDER_SQL = `(e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq`;

/** notify rows for things whose pending set gained or lost a member, payload as of now (fj_notify, migration 0006). */
export async function insertNotifyForThings(
  tx: Queryable,
  thingNames: readonly string[],
  now: Date,
): Promise<void> {
  if (thingNames.length === 0) return;
  await tx.query(`SELECT fj_notify($1, $2::text[])`, [now, thingNames]);
}

/**
 * notify-next rows for things whose head differs from the one last announced (fj_notify_next, migration 0006).
 * The row names the new head; the dispatcher reads the execution and its document when it publishes, so the
 * outbox never holds a copy of a 32 KB document per thing.
 */
export async function insertNotifyNextForThings(
  tx: Queryable,
  thingNames: readonly string[],
  now: Date,
): Promise<void> {
  if (thingNames.length === 0) return;
  await tx.query(`SELECT fj_notify_next($1, $2::text[])`, [now, thingNames]);
}

/**
 * A SNAPSHOT job j whose rollout is done, with no pending execution and no retry waiting: ready to complete.
 * fj_complete_jobs (migration 0006) carries a copy; test/unit/funnel-sql.test.ts holds the two equal.
 */
export const JOB_DONE_SQL = `j.status = 'IN_PROGRESS' AND j.target_selection = 'SNAPSHOT' AND NOT j.rollout_pending
  AND NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.job_id = j.job_id AND e.status IN (${PENDING_SQL}))
  AND NOT ${PENDING_RETRIES_SQL}`;

/**
 * Completes SNAPSHOT jobs whose rollout is done and whose executions are all terminal, with a `completed` event
 * (fj_complete_jobs, migration 0006; JOB_DONE_SQL is its condition). The check runs first without a lock: most
 * changes leave executions pending, and locking the job row on every device update would serialize all of a
 * job's devices until commit. Only jobs that look done are locked and
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
  const rows = await tx.query<{ completed: string[] }>(
    `SELECT fj_complete_jobs($1, $2, $3::text[]) AS completed`,
    [now, EVENTS_ROOT, jobIds],
  );
  return rows[0]?.completed ?? [];
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
 * notify-next rows, in the caller's transaction; the fanout row records the chunk as expanded. The chunk's
 * things are locked in name order first, like every writer locks them, so payloads and head comparisons are
 * those of the current committed state of each thing. Returns false when there was nothing left to expand (or
 * other dispatchers hold all of it). The row's events are written apart (writeFanoutEvents), without these locks.
 */
export async function expandFanoutChunk(tx: Queryable, size: number, now: Date): Promise<boolean> {
  const chunk = await lockFanoutChunk(tx, size);
  if (chunk === undefined) return false;
  await lockThings(tx, [...new Set([...chunk.notifyThings, ...chunk.notifyNextThings])].sort());
  await insertNotifyForThings(tx, chunk.notifyThings, now);
  await insertNotifyNextForThings(tx, chunk.notifyNextThings, now);
  await advanceFanout(tx, chunk);
  return true;
}
