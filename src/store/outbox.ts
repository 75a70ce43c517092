import type { Queryable } from './db.js';
import type { ExecutionStatus } from '../protocol/states.js';

/**
 * An outbox row ready to publish. notify and event rows carry their payload (event rows also their topic);
 * notify-next rows name the head, joined here with the execution and its job document as they are now, or
 * no head at all (jobId null: the pending set became empty).
 */
export interface OutboxEntry {
  id: number;
  kind: 'notify' | 'notify-next' | 'event';
  thingName: string | null;
  topic: string | null;
  payload: unknown;
  createdAt: Date;
  jobId: string | null;
  executionNumber: number | null;
  head: {
    status: ExecutionStatus;
    statusDetails: Record<string, string>;
    queuedAt: Date;
    startedAt: Date | null;
    lastUpdatedAt: Date;
    versionNumber: number;
    timeoutAt: Date | null;
    jobDocument: string;
  } | null;
}

interface OutboxJoinedRow {
  id: number;
  kind: OutboxEntry['kind'];
  thingName: string | null;
  topic: string | null;
  payload: unknown;
  createdAt: Date;
  jobId: string | null;
  executionNumber: number | null;
  status: ExecutionStatus | null;
  statusDetails: Record<string, string> | null;
  queuedAt: Date | null;
  startedAt: Date | null;
  lastUpdatedAt: Date | null;
  versionNumber: number | null;
  timeoutAt: Date | null;
  jobDocument: string | null;
}

/**
 * Locks the oldest unpublished rows (id order) that no other dispatcher holds; several instances share the
 * outbox without publishing a row twice while both are alive. `fanout` rows are not published: they are
 * expanded (lockFanoutChunk) into the rows that are.
 */
export async function lockOutboxBatch(tx: Queryable, limit: number): Promise<OutboxEntry[]> {
  const rows = await tx.query<OutboxJoinedRow>(
    `SELECT o.id, o.kind, o.thing_name, o.topic, o.payload, o.created_at, o.job_id, o.execution_number,
       e.status, e.status_details, e.queued_at, e.started_at, e.last_updated_at, e.version_number, e.timeout_at,
       j.document AS job_document
     FROM outbox o
     LEFT JOIN job_executions e ON o.kind = 'notify-next' AND e.job_id = o.job_id
       AND e.thing_name = o.thing_name AND e.execution_number = o.execution_number
     LEFT JOIN jobs j ON j.job_id = e.job_id
     WHERE o.kind <> 'fanout'
     ORDER BY o.id LIMIT $1
     FOR UPDATE OF o SKIP LOCKED`,
    [limit],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    thingName: r.thingName,
    topic: r.topic,
    payload: r.payload,
    createdAt: r.createdAt,
    jobId: r.jobId,
    executionNumber: r.executionNumber,
    head:
      r.status === null || r.jobDocument === null
        ? null
        : {
            status: r.status,
            statusDetails: r.statusDetails ?? {},
            queuedAt: r.queuedAt as Date,
            startedAt: r.startedAt,
            lastUpdatedAt: r.lastUpdatedAt as Date,
            versionNumber: r.versionNumber as number,
            timeoutAt: r.timeoutAt,
            jobDocument: r.jobDocument,
          },
  }));
}

export async function deleteOutboxRows(tx: Queryable, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [ids]);
}

/**
 * Whether a fanout row waits for expansion or for its events to be written: a cheap look (a partial index)
 * before a dispatcher opens a transaction for one.
 */
export async function selectFanoutPending(db: Queryable): Promise<boolean> {
  const rows = await db.query<{ pending: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'fanout') AS pending`,
  );
  return rows[0]?.pending === true;
}

/** The next chunk of a fanout row: up to `size` entries of each of its lists, from where expansion stopped. */
export interface FanoutChunk {
  id: number;
  notifyThings: string[];
  notifyNextThings: string[];
  /** Entries of each list expanded once this chunk is. */
  expanded: number;
  /** This chunk is the row's last: the row goes once it is expanded, if its events are written too. */
  last: boolean;
  /** Every event the row carries is written (writeFanoutEvents). */
  eventsWritten: boolean;
}

/**
 * Locks the oldest fanout row with things left to expand that no other dispatcher holds and reads its next
 * chunk. The row stays locked until the caller's transaction ends, so two dispatchers never expand the same
 * chunk.
 */
export async function lockFanoutChunk(tx: Queryable, size: number): Promise<FanoutChunk | undefined> {
  const rows = await tx.query<FanoutChunk>(
    `SELECT id,
       coalesce(notify_things[expanded + 1 : expanded + $1], '{}') AS notify_things,
       coalesce(notify_next_things[expanded + 1 : expanded + $1], '{}') AS notify_next_things,
       expanded + $1 AS expanded,
       expanded + $1 >= greatest(cardinality(notify_things), cardinality(notify_next_things)) AS last,
       events_written >= coalesce(cardinality(event_ids), 0) AS events_written
     FROM outbox
     WHERE kind = 'fanout' AND expanded < greatest(cardinality(notify_things), cardinality(notify_next_things))
     ORDER BY id LIMIT 1
     FOR UPDATE SKIP LOCKED`,
    [size],
  );
  return rows[0];
}

/**
 * Records a chunk as expanded: the row advances past it, or goes once its last chunk is done and its events
 * are written (else writeFanoutEvents removes it with its last events).
 */
export async function advanceFanout(tx: Queryable, chunk: FanoutChunk): Promise<void> {
  if (chunk.last && chunk.eventsWritten) await tx.query(`DELETE FROM outbox WHERE id = $1`, [chunk.id]);
  else await tx.query(`UPDATE outbox SET expanded = $2 WHERE id = $1`, [chunk.id, chunk.expanded]);
}
