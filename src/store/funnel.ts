import type { Queryable } from './db.js';
import { isPending } from '../protocol/states.js';
import {
  insertBareExecutionEvents,
  insertExecutionEvents,
  type ExecutionEventKey,
  type ExecutionEventOperation,
} from './events.js';
import { completeJobsIfDone, insertNotifyForThings, insertNotifyNextForThings } from './notifications.js';
import { insertFanout } from './outbox.js';
import { queueRetries } from './retries.js';
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
 *    FANOUT_THRESHOLD things) and the rollup of SNAPSHOT jobs whose last execution ended.
 * The caller calls `deps.outboxWritten()` after commit.
 */

/**
 * A change that touches more things than this defers their notify and notify-next rows to one `fanout` outbox
 * row (insertFanout), expanded after commit by the dispatcher, and writes its execution events bare
 * (insertBareExecutionEvents). Writing 100,000 notify payloads, 100,000 notify-next rows, 100,000 things
 * updates and the event payloads inside a CreateJob or a timeout batch took most of its time; a device request
 * (or a micro-batch of them, a few hundred at most) stays far below and notifies inline.
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
 * Step 4 of the funnel: notify for pending-set membership changes, notify-next for head changes (deferred to a
 * fanout row above FANOUT_THRESHOLD things), execution events, retries, rollup of jobs whose last execution
 * ended. Returns the jobs it completed.
 */
async function afterExecutionsChanged(
  tx: Queryable,
  changes: readonly ExecutionChange[],
  now: Date,
): Promise<{ completedJobIds: string[] }> {
  if (changes.length === 0) return { completedJobIds: [] };
  const membership = new Set<string>();
  const touched = new Set<string>();
  const endedJobs = new Set<string>();
  const events: ExecutionEventKey[] = [];
  const ended: ExecutionChange[] = [];
  for (const c of changes) {
    touched.add(c.thingName);
    const wasPending = c.previousStatus !== null && isPending(c.previousStatus);
    const nowPending = !c.deleted && isPending(c.status);
    if (wasPending !== nowPending) membership.add(c.thingName);
    if (!nowPending) endedJobs.add(c.jobId);
    // [protocol §6] An execution event when an execution ends or is deleted.
    if (c.deleted) events.push({ ...c, operation: 'deleted' });
    else if (wasPending && !nowPending) {
      events.push({ ...c, operation: c.status.toLowerCase() as ExecutionEventOperation });
      ended.push(c);
    }
  }
  // Statements that do not read each other's writes are sent together (one round trip on PostgreSQL); the
  // server still runs them in the order written. Retries only add things: a change above the threshold stays so.
  const [, retries] = await Promise.all([
    touched.size > FANOUT_THRESHOLD
      ? insertBareExecutionEvents(tx, events, now)
      : insertExecutionEvents(tx, events, now),
    // [protocol §4] Retries of FAILED / TIMED_OUT executions join the pending set in this same transaction.
    queueRetries(tx, ended, now),
  ]);
  for (const r of retries) {
    touched.add(r.thingName);
    membership.add(r.thingName);
  }
  const [, , completedJobIds] = await Promise.all([
    touched.size > FANOUT_THRESHOLD
      ? insertFanout(tx, { notifyThings: [...membership].sort(), notifyNextThings: [...touched].sort() }, now)
      : insertNotifyForThings(tx, [...membership], now),
    touched.size > FANOUT_THRESHOLD ? undefined : insertNotifyNextForThings(tx, [...touched], now),
    // The rollup reads only executions and retries, written above.
    completeJobsIfDone(tx, [...endedJobs], now),
  ]);
  return { completedJobIds };
}
