import type { Queryable } from './db.js';
import type { ExecutionStatus } from '../protocol/states.js';
import { EVENTS_ROOT } from '../protocol/topics.js';
import type { ExecutionWithDocument } from './executions.js';
import type { ExecutionChange } from './rows.js';
import { lockThings } from './things.js';

/**
 * The write funnel: the one way executions are created, changed or deleted (CreateJob, AssociateTargets,
 * cancel, delete, device writes, timeouts, retries, rollout, thing and group membership). In the caller's
 * transaction, in this order:
 * 1. lock: the things' row locks in name order (lock order: things, then executions, then jobs);
 * 2. read: what the change is checked against, its snapshot taken after the locks;
 * 3. change: guarded statements (`WHERE status = ... AND version_number = $v`, version + 1) that return one
 *    ExecutionChange per execution they touched;
 * 4. after the change: execution events, retries, notify / notify-next outbox rows (one fanout row above
 *    FANOUT_THRESHOLD things) and the rollup of SNAPSHOT jobs whose last execution ended, in one statement
 *    (fj_after_change, migrations 0006 and 0010).
 * A device batch runs all four steps in one statement (writeDeviceBatch), committed on its own. The caller calls
 * `deps.outboxWritten()` after commit.
 */

/**
 * A change that touches more things than this defers their notify and notify-next rows to one `fanout` outbox
 * row, expanded after commit by the dispatcher; the row carries the keys and ids of its execution events, which
 * the dispatcher writes after commit too (fj_after_change, migrations 0006 and 0010). Writing 100,000 notify
 * payloads, 100,000 notify-next rows, 100,000 things updates and the event payloads inside a CreateJob or a
 * timeout batch took most of its time; a device request (or a micro-batch of them, a few hundred at most) stays
 * far below and notifies inline.
 */
export const FANOUT_THRESHOLD = 1_000;

/** The things a write holds locked (and, for a lock step of its own, whatever else it locked and read). */
export interface LockedThings {
  thingNames: string[];
}

export interface ExecutionWrite<
  L extends LockedThings,
  R,
  C extends { changes: readonly ExecutionChange[] },
> {
  /**
   * The things to lock (lockThings: those that exist stay locked), or a lock step of the caller's own that takes
   * the things' locks itself, in name order, and returns them (with anything locked alongside, such as the job).
   */
  lock: readonly string[] | ((tx: Queryable) => Promise<L>);
  /** Reads the change is checked against; sent with a list lock (one round trip on PostgreSQL), run after it. */
  read?: (tx: Queryable) => Promise<R>;
  /** The guarded change on the locked things; returns its changes and whatever the caller wants back. */
  change: (locked: L, read: R) => Promise<C>;
}

/**
 * Runs one execution write through the funnel (see the top of this file) in the caller's transaction. Returns
 * what `change` returned and the jobs the rollup completed.
 */
export async function writeExecutions<
  C extends { changes: readonly ExecutionChange[] },
  R = undefined,
  L extends LockedThings = LockedThings,
>(tx: Queryable, now: Date, write: ExecutionWrite<L, R, C>): Promise<C & { completedJobIds: string[] }> {
  const { lock, read } = write;
  let locked: L;
  let snapshot: R;
  if (typeof lock === 'function') {
    locked = await lock(tx);
    snapshot = (read ? await read(tx) : undefined) as R;
  } else {
    // Sent together, run in order: the read's snapshot is taken after the locks.
    const [thingNames, r] = await Promise.all([lockThings(tx, lock), read?.(tx)]);
    locked = { thingNames } as L;
    snapshot = r as R;
  }
  const result = await write.change(locked, snapshot);
  const { completedJobIds } = await afterExecutionsChanged(tx, result.changes, now);
  return { ...result, completedJobIds };
}

/**
 * Step 4 of the funnel, in one statement: fj_after_change (migrations 0006 and 0010) writes the execution events,
 * queues retries, writes notify for pending-set membership changes and notify-next for head changes (one fanout
 * row above FANOUT_THRESHOLD things, carrying the events) and completes SNAPSHOT jobs whose last execution
 * ended. Returns the jobs it completed.
 */
async function afterExecutionsChanged(
  tx: Queryable,
  changes: readonly ExecutionChange[],
  now: Date,
): Promise<{ completedJobIds: string[] }> {
  if (changes.length === 0) return { completedJobIds: [] };
  const rows = await tx.query<{ completed: string[] }>(
    `SELECT fj_after_change($1, $2, $3, $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
       $9::text[]::boolean[]) AS completed`,
    [
      now,
      EVENTS_ROOT,
      FANOUT_THRESHOLD,
      changes.map((c) => c.jobId),
      changes.map((c) => c.thingName),
      changes.map((c) => c.executionNumber),
      changes.map((c) => c.status),
      changes.map((c) => c.previousStatus),
      // postgres.js types a JS boolean array as one boolean: sent as text.
      changes.map((c) => String(c.deleted === true)),
    ],
  );
  return { completedJobIds: rows[0]?.completed ?? [] };
}

/**
 * One device write (StartNextPendingJobExecution claim or UpdateJobExecution) of a batch: a start-next asks for
 * the thing's head, an update names its execution (the latest when executionNumber is omitted).
 */
export interface DeviceBatchWrite {
  kind: 'start-next' | 'update';
  thingName: string;
  /** update only */
  jobId?: string | undefined;
  executionNumber?: number | undefined;
  expectedVersion?: number | undefined;
  /** What the write sets: the update's status, IN_PROGRESS for a claim. */
  status: ExecutionStatus;
  statusDetails?: Record<string, string> | undefined;
  /** Minutes from now for the step timer; -1 clears it; undefined leaves it. */
  stepTimeoutInMinutes?: number | undefined;
}

/** A write's execution as the batch left it, and whether the write applied. */
export interface DeviceBatchResult {
  applied: boolean;
  row: ExecutionWithDocument;
}

/**
 * The funnel's four steps for a batch of device writes (at most one per thing) fused into one statement,
 * fj_device_batch (migration 0006): lock the things in name order, read each write's execution under the locks,
 * one guarded UPDATE of those that apply (an update to a pending execution, at expectedVersion when given; a claim
 * of a QUEUED head), then step 4 (fj_after_change) for every applied change. One statement is atomic, so it needs
 * no transaction of its own: outside one it commits alone, in one round trip. Returns, by write index, its
 * execution as it now is; absent where the write found none (no such execution, or nothing pending).
 */
export async function writeDeviceBatch(
  db: Queryable,
  now: Date,
  writes: readonly DeviceBatchWrite[],
): Promise<(DeviceBatchResult | undefined)[]> {
  const rows = await db.query<ExecutionWithDocument & { ord: number; applied: boolean }>(
    `SELECT * FROM fj_device_batch($1, $2, $3, $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
       $9::text[], $10::bigint[], $11::int[])`,
    [
      now,
      EVENTS_ROOT,
      FANOUT_THRESHOLD,
      writes.map((w) => w.kind),
      writes.map((w) => w.thingName),
      writes.map((w) => w.jobId ?? null),
      writes.map((w) => w.executionNumber ?? null),
      writes.map((w) => w.status),
      writes.map((w) => (w.statusDetails === undefined ? null : JSON.stringify(w.statusDetails))),
      writes.map((w) => w.expectedVersion ?? null),
      writes.map((w) => w.stepTimeoutInMinutes ?? null),
    ],
  );
  const out: (DeviceBatchResult | undefined)[] = writes.map(() => undefined);
  for (const { ord, applied, ...row } of rows) out[ord - 1] = { applied, row };
  return out;
}
