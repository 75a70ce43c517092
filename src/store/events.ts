import type { Queryable } from './db.js';
import { statusCountsSql } from './states-sql.js';
import type { ArnContext } from '../protocol/arns.js';
import { EVENTS_ROOT } from '../protocol/topics.js';

/**
 * [protocol §6] Job and execution events. Each is written twice in the transaction of the change: to the events
 * table (GET /events, kept for the retention period) and to the outbox as an `event` row with its full topic
 * and payload, which the dispatcher publishes as it is. Payload keys follow AWS (reference §4.4); times are
 * integer epoch seconds like the rest of the device plane. The write funnel writes execution events in SQL
 * (fj_execution_events, migration 0006); those of a change to more than FANOUT_THRESHOLD things are carried by
 * its fanout row and written after commit (writeFanoutEvents, migration 0010).
 */

/** The `$aws/events/job/{jobId}/{operation}` operations. */
export type JobEventOperation = 'completed' | 'canceled' | 'deleted';

/**
 * The latest execution of each thing of job j, counted by status: jobProcessDetails in SQL (the `completed` job
 * event's copy is in fj_job_events, migration 0006).
 */
export const PROCESS_DETAILS_SQL = `(SELECT ${statusCountsSql('l.status')}
  FROM (SELECT DISTINCT ON (x.thing_name) x.status FROM job_executions x
        WHERE x.job_id = j.job_id ORDER BY x.thing_name, x.execution_number DESC) l)`;

/**
 * Writes the next `limit` execution events a fanout row carries (fj_after_change, migration 0010), under the ids
 * drawn for them at the change, with the payload the inline path would have built then (timestamp of the
 * change, statusDetails of the ended execution), and their outbox copies, in one statement; the row goes with
 * its last events once its things are expanded too. Returns how many it wrote.
 */
export async function writeFanoutEvents(db: Queryable, limit: number, now: Date): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH f AS (
       SELECT id, created_at, events_written,
         events_written + $1 >= cardinality(event_ids)
           AND expanded >= greatest(cardinality(notify_things), cardinality(notify_next_things)) AS done,
         event_ids[events_written + 1 : events_written + $1] AS ids,
         event_topics[events_written + 1 : events_written + $1] AS topics,
         event_job_ids[events_written + 1 : events_written + $1] AS job_ids,
         event_thing_names[events_written + 1 : events_written + $1] AS thing_names,
         event_execution_numbers[events_written + 1 : events_written + $1] AS execution_numbers,
         event_statuses[events_written + 1 : events_written + $1] AS statuses,
         event_tenant_ids[events_written + 1 : events_written + $1] AS tenant_ids
       FROM outbox
       WHERE kind = 'fanout' AND events_written < cardinality(event_ids)
       ORDER BY id LIMIT 1
       FOR UPDATE SKIP LOCKED
     ), ev AS (
       INSERT INTO events (id, topic, job_id, payload, created_at, tenant_id) OVERRIDING SYSTEM VALUE
       SELECT k.id, k.topic, k.job_id,
         fj_execution_event_payload(f.created_at, substring(k.topic FROM '[^/]+$'), k.job_id, k.thing_name,
           k.status,
           (SELECT x.status_details FROM job_executions x
            WHERE x.job_id = k.job_id AND x.thing_name = k.thing_name AND x.execution_number = k.execution_number),
           d.region, d.account_id),
         f.created_at, k.tenant_id
       FROM f CROSS JOIN deployment_settings d
       CROSS JOIN LATERAL unnest(f.ids, f.topics, f.job_ids, f.thing_names, f.execution_numbers, f.statuses,
         f.tenant_ids) AS k(id, topic, job_id, thing_name, execution_number, status, tenant_id)
       ORDER BY k.id
       RETURNING id, topic, job_id, payload
     ), ob AS (
       INSERT INTO outbox (kind, topic, job_id, payload, created_at)
       SELECT 'event', topic, job_id, payload, $2 FROM ev ORDER BY id RETURNING 1
     ), advanced AS (
       UPDATE outbox o SET events_written = f.events_written + cardinality(f.ids) FROM f
       WHERE o.id = f.id AND NOT f.done
     ), removed AS (
       DELETE FROM outbox o USING f WHERE o.id = f.id AND f.done
     )
     SELECT count(*) AS n FROM ob`,
    [limit, now],
  );
  return rows[0]?.n ?? 0;
}

/** Job events for the given jobs as they are now; `completed` carries jobProcessDetails. */
export async function insertJobEvents(
  tx: Queryable,
  jobIds: readonly string[],
  operation: JobEventOperation,
  now: Date,
): Promise<number> {
  if (jobIds.length === 0) return 0;
  const rows = await tx.query<{ n: number }>(`SELECT fj_job_events($1, $2, $3::text[], $4) AS n`, [
    now,
    EVENTS_ROOT,
    jobIds,
    operation,
  ]);
  return rows[0]?.n ?? 0;
}

/** Records the region and account of this deployment, for thingArn in event payloads. */
export async function saveDeploymentSettings(db: Queryable, arn: ArnContext): Promise<void> {
  // Unchanged settings (every restart of a deployment) write nothing: no row version, no WAL to flush.
  await db.query(
    `UPDATE deployment_settings SET region = $1, account_id = $2
     WHERE id AND (region IS DISTINCT FROM $1 OR account_id IS DISTINCT FROM $2)`,
    [arn.region, arn.accountId],
  );
}

/**
 * Gives committed events their public sequence numbers, oldest first. The caller holds the sequencer lock
 * (tryWorkerLock), so batches are numbered one after another and seq order is commit order.
 */
export async function sequenceEvents(tx: Queryable, limit: number): Promise<number> {
  const rows = await tx.query<{ n: number }>(
    // The order nextval is drawn in across rows is the plan's, not id order (a prepared statement's generic plan
    // drew them backwards): one block of numbers is reserved with setval and handed out by row_number over id.
    // The first id a fanout row holds for an event not yet written (writeFanoutEvents) and every event after it
    // wait until that event is. A range of ids from the oldest unsequenced one, not `ORDER BY id LIMIT`: a sweep
    // writes events faster than statistics follow, and the planner, expecting a few hundred, sorted every
    // unsequenced event on each call while a sweep's events waited.
    `WITH batch AS (
       SELECT e.id, row_number() OVER (ORDER BY e.id) AS rn
       FROM events e, (SELECT min(id) AS id FROM events WHERE seq IS NULL) lo
       WHERE e.seq IS NULL AND e.id >= lo.id AND e.id < lo.id + $1
         AND e.id < coalesce(
           (SELECT min(o.event_ids[o.events_written + 1]) FROM outbox o WHERE o.kind = 'fanout'), $2)
     ), reserved AS (
       SELECT setval('events_seq', nextval('events_seq') + count(*) - 1) - count(*) AS before
       FROM batch HAVING count(*) > 0
     ), s AS (
       UPDATE events e SET seq = reserved.before + batch.rn FROM batch, reserved WHERE e.id = batch.id
       RETURNING 1)
     SELECT count(*) AS n FROM s`,
    [limit, Number.MAX_SAFE_INTEGER],
  );
  return rows[0]?.n ?? 0;
}

/** Deletes sequenced events created before the cutoff, at most limit of them. */
export async function deleteEventsBefore(db: Queryable, cutoff: Date, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH d AS (
       DELETE FROM events WHERE id IN (
         SELECT id FROM events WHERE created_at < $1 AND seq IS NOT NULL ORDER BY created_at LIMIT $2)
       RETURNING 1)
     SELECT count(*) AS n FROM d`,
    [cutoff, limit],
  );
  return rows[0]?.n ?? 0;
}

export interface EventRow {
  seq: number;
  topic: string;
  jobId: string;
  payload: Record<string, unknown>;
}

/** Sequenced events after a sequence number, in order, optionally of one job. */
export async function selectEventsAfter(
  db: Queryable,
  afterSeq: number,
  limit: number,
  jobId?: string,
): Promise<EventRow[]> {
  return db.query<EventRow>(
    `SELECT seq, topic, job_id, payload FROM events
     WHERE seq > $1 AND ($3::text IS NULL OR job_id = $3)
     ORDER BY seq LIMIT $2`,
    [afterSeq, limit, jobId ?? null],
  );
}

/** The highest sequence number given so far (0 when none): where a new consumer without Last-Event-ID starts. */
export async function selectLastEventSeq(db: Queryable): Promise<number> {
  const rows = await db.query<{ seq: number | null }>(`SELECT max(seq) AS seq FROM events`);
  return rows[0]?.seq ?? 0;
}
