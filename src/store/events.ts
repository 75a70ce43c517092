import type { Queryable } from './db.js';
import { statusCountsSql } from './states-sql.js';
import type { ArnContext } from '../protocol/arns.js';
import { EVENTS_ROOT } from '../protocol/topics.js';

/**
 * [protocol §6] Job and execution events. Each is written twice in the transaction of the change: to the events
 * table (GET /events, kept for the retention period) and to the outbox as an `event` row with its full topic
 * and payload, which the dispatcher publishes as it is. Payload keys follow AWS (reference §4.4); times are
 * integer epoch seconds like the rest of the device plane. The execution events of a change to more than
 * FANOUT_THRESHOLD things are written bare instead, and completed after commit (insertBareExecutionEvents).
 */

/** The `$aws/events/jobExecution/{jobId}/{operation}` operations. */
export type ExecutionEventOperation =
  'succeeded' | 'failed' | 'rejected' | 'canceled' | 'timed_out' | 'removed' | 'deleted';
/** The `$aws/events/job/{jobId}/{operation}` operations. */
export type JobEventOperation = 'completed' | 'canceled' | 'deleted';

export interface ExecutionEventKey {
  jobId: string;
  thingName: string;
  executionNumber: number;
  /** The execution's status (for `deleted`, the status it had). */
  status: string;
  operation: ExecutionEventOperation;
}

const EPOCH = (col: string) => `floor(extract(epoch FROM ${col}))::bigint`;

/** The latest execution of each thing of job j, counted by status: jobProcessDetails in SQL. */
export const PROCESS_DETAILS_SQL = `(SELECT ${statusCountsSql('l.status')}
  FROM (SELECT DISTINCT ON (x.thing_name) x.status FROM job_executions x
        WHERE x.job_id = j.job_id ORDER BY x.thing_name, x.execution_number DESC) l)`;

/** The `$aws/events/jobExecution` payload, from SQL expressions for each of its parts. */
function executionEventPayloadSql(p: {
  at: string;
  operation: string;
  jobId: string;
  thingName: string;
  status: string;
  statusDetails: string;
}): string {
  return `jsonb_build_object(
           'eventType', 'JOB_EXECUTION',
           'eventId', gen_random_uuid()::text,
           'timestamp', ${EPOCH(p.at)},
           'operation', ${p.operation},
           'jobId', ${p.jobId},
           'thingArn', 'arn:aws:iot:' || d.region || ':' || d.account_id || ':thing/' || ${p.thingName},
           'status', ${p.status},
           'statusDetails', coalesce(${p.statusDetails}, '{}'::jsonb))`;
}

/** $1..$7 of the execution event inserts: the keys as columns, the time and the events root. */
function eventKeyParams(keys: readonly ExecutionEventKey[], now: Date): unknown[] {
  return [
    keys.map((k) => k.jobId),
    keys.map((k) => k.thingName),
    keys.map((k) => k.executionNumber),
    keys.map((k) => k.operation),
    now,
    EVENTS_ROOT,
    keys.map((k) => k.status),
  ];
}

/**
 * Terminal execution events, one statement for any number of executions. statusDetails is read from the
 * execution if it still exists (a deleted one has none).
 */
export async function insertExecutionEvents(
  tx: Queryable,
  keys: readonly ExecutionEventKey[],
  now: Date,
): Promise<number> {
  if (keys.length === 0) return 0;
  const rows = await tx.query<{ n: number }>(
    `WITH ev AS (
       INSERT INTO events (topic, job_id, payload, created_at)
       SELECT $6 || '/jobExecution/' || k.job_id || '/' || k.operation, k.job_id,
         ${executionEventPayloadSql({
           at: '$5::timestamptz',
           operation: 'k.operation',
           jobId: 'k.job_id',
           thingName: 'k.thing_name',
           status: 'k.status',
           statusDetails: 'e.status_details',
         })},
         $5
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $7::text[])
              AS k(job_id, thing_name, execution_number, operation, status)
       -- LATERAL ... LIMIT 1: one primary-key lookup per event, never a hash join over every execution.
       LEFT JOIN LATERAL (
         SELECT x.status_details FROM job_executions x
         WHERE x.job_id = k.job_id AND x.thing_name = k.thing_name AND x.execution_number = k.execution_number
         LIMIT 1) e ON true
       CROSS JOIN deployment_settings d
       ORDER BY k.job_id, k.thing_name, k.execution_number
       RETURNING topic, job_id, payload
     ), ob AS (
       INSERT INTO outbox (kind, topic, job_id, payload, created_at)
       SELECT 'event', topic, job_id, payload, $5 FROM ev RETURNING 1
     )
     SELECT count(*) AS n FROM ob`,
    eventKeyParams(keys, now),
  );
  return rows[0]?.n ?? 0;
}

/**
 * Execution events of a change too large to build inline (migration 0004): each row has its topic, job, execution
 * and status, in the order given, and no payload until completeBareEvents builds it after commit. Their ids are
 * drawn here, so they keep their place among the events of other transactions.
 */
export async function insertBareExecutionEvents(
  tx: Queryable,
  keys: readonly ExecutionEventKey[],
  now: Date,
): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(
    `INSERT INTO events (topic, job_id, thing_name, execution_number, status, created_at)
     SELECT $6 || '/jobExecution/' || k.job_id || '/' || k.operation, k.job_id, k.thing_name, k.execution_number,
       k.status, $5
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $7::text[])
            AS k(job_id, thing_name, execution_number, operation, status)`,
    eventKeyParams(keys, now),
  );
}

/**
 * Builds the payload of the oldest bare events (at most limit, none that another dispatcher holds) as the inline
 * path would have at their change (timestamp of the change, statusDetails of the ended execution), and writes
 * their outbox copies. Returns how many it completed.
 */
export async function completeBareEvents(tx: Queryable, limit: number, now: Date): Promise<number> {
  const rows = await tx.query<{ n: number }>(
    `WITH bare AS (
       SELECT id FROM events WHERE payload IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
     ), ev AS (
       UPDATE events v SET payload = ${executionEventPayloadSql({
         at: 'v.created_at',
         operation: `substring(v.topic FROM '[^/]+$')`,
         jobId: 'v.job_id',
         thingName: 'v.thing_name',
         status: 'v.status',
         statusDetails: `(SELECT x.status_details FROM job_executions x
           WHERE x.job_id = v.job_id AND x.thing_name = v.thing_name AND x.execution_number = v.execution_number)`,
       })}
       FROM bare CROSS JOIN deployment_settings d
       WHERE v.id = bare.id
       RETURNING v.id, v.topic, v.job_id, v.payload
     ), ob AS (
       INSERT INTO outbox (kind, topic, job_id, payload, created_at)
       SELECT 'event', topic, job_id, payload, $2 FROM ev ORDER BY id RETURNING 1
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
  const status = { completed: 'COMPLETED', canceled: 'CANCELED', deleted: 'DELETED' }[operation];
  const rows = await tx.query<{ n: number }>(
    `WITH ev AS (
       INSERT INTO events (topic, job_id, payload, created_at)
       SELECT $5 || '/job/' || j.job_id || '/' || $2, j.job_id,
         jsonb_strip_nulls(jsonb_build_object(
           'eventType', 'JOB',
           'eventId', gen_random_uuid()::text,
           'timestamp', ${EPOCH('$4::timestamptz')},
           'operation', $2::text,
           'jobId', j.job_id,
           'status', $3::text,
           'targetSelection', j.target_selection,
           'targets', to_jsonb(j.targets),
           'description', j.description,
           'createdAt', ${EPOCH('j.created_at')},
           'lastUpdatedAt', ${EPOCH('j.last_updated_at')},
           'completedAt', ${EPOCH('j.completed_at')},
           'reasonCode', j.reason_code,
           'comment', j.comment,
           'jobProcessDetails', CASE WHEN $2 = 'completed' THEN ${PROCESS_DETAILS_SQL} END)),
         $4
       FROM jobs j WHERE j.job_id = ANY($1::text[])
       ORDER BY j.job_id
       RETURNING topic, job_id, payload
     ), ob AS (
       INSERT INTO outbox (kind, topic, job_id, payload, created_at)
       SELECT 'event', topic, job_id, payload, $4 FROM ev RETURNING 1
     )
     SELECT count(*) AS n FROM ob`,
    [jobIds, operation, status, now, EVENTS_ROOT],
  );
  return rows[0]?.n ?? 0;
}

/** Records the region and account of this deployment, for thingArn in event payloads. */
export async function saveDeploymentSettings(db: Queryable, arn: ArnContext): Promise<void> {
  await db.query(`UPDATE deployment_settings SET region = $1, account_id = $2 WHERE id`, [
    arn.region,
    arn.accountId,
  ]);
}

/**
 * Gives committed events their public sequence numbers, oldest first. The caller holds the sequencer lock
 * (tryWorkerLock), so batches are numbered one after another and seq order is commit order.
 */
export async function sequenceEvents(tx: Queryable, limit: number): Promise<number> {
  const rows = await tx.query<{ n: number }>(
    // The order nextval is drawn in across rows is the plan's, not id order (a prepared statement's generic plan
    // drew them backwards): one block of numbers is reserved with setval and handed out by row_number over id.
    // A bare event (insertBareExecutionEvents) and every event after it wait until its payload is built.
    `WITH batch AS (
       SELECT id, row_number() OVER (ORDER BY id) AS rn
       FROM (SELECT id FROM events
             WHERE seq IS NULL AND id < coalesce((SELECT min(id) FROM events WHERE payload IS NULL), $2)
             ORDER BY id LIMIT $1) b
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
