import type { Queryable } from './db.js';

/** Jobs per status: the jobs table is small (one row per job), a plain GROUP BY. */
export async function countJobsByStatus(db: Queryable): Promise<{ status: string; n: number }[]> {
  return db.query<{ status: string; n: number }>(
    `SELECT status, count(*) AS n FROM jobs GROUP BY status ORDER BY status`,
  );
}

/** Executions per status, every row: one scan of the executions table, so callers run it rarely. */
export async function countExecutionsByStatus(db: Queryable): Promise<{ status: string; n: number }[]> {
  return db.query<{ status: string; n: number }>(
    `SELECT status, count(*) AS n FROM job_executions GROUP BY status ORDER BY status`,
  );
}

/** Outbox rows not yet published, and the age in seconds of the oldest (0 when empty). */
export async function selectOutboxBacklog(
  db: Queryable,
  now: Date,
): Promise<{ n: number; oldestAgeSeconds: number }> {
  const rows = await db.query<{ n: number; oldestAgeSeconds: number | null }>(
    `SELECT count(*) AS n,
       extract(epoch FROM ($1::timestamptz - min(created_at)))::float8 AS oldest_age_seconds
     FROM outbox`,
    [now],
  );
  return { n: rows[0]?.n ?? 0, oldestAgeSeconds: Math.max(0, rows[0]?.oldestAgeSeconds ?? 0) };
}
