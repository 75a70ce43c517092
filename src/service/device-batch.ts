/**
 * Micro-batching of device writes (StartNextPendingJobExecution and UpdateJobExecution), protocol fact 5.
 * Requests that arrive while earlier ones are in the database are queued, and each transaction takes as many
 * as have gathered: one thing lock statement, one read, one guarded UPDATE and one notification funnel for the
 * whole batch, instead of the same statements and an fsync'd commit per request. A request arriving at an idle
 * service still runs at once, alone.
 *
 * What a device can observe is unchanged:
 * - every request gets the reply and error code it would get alone: each is checked on its own against its own
 *   execution, under its thing's lock, and a rejected one changes nothing;
 * - a batch holds at most one request per thing, and a thing's next request waits until the batch holding its
 *   previous one has committed, so per-thing order is arrival order;
 * - if a batch's transaction fails as a whole (a database error, a guard that failed), each of its requests runs
 *   again alone, so one request's failure never fails another's; a database that is unreachable fails them all.
 */
import { performance } from 'node:perf_hooks';
import { FleetJobsError } from '../protocol/errors.js';
import { deviceTransition, type ExecutionStatus } from '../protocol/states.js';
import {
  selectExecutionsByKey,
  selectHeadExecutions,
  updateExecutionsByDevice,
  type DeviceStatusChange,
  type ExecutionWithDocument,
} from '../store/executions.js';
import { writeExecutions } from '../store/funnel.js';
import { isStoreUnavailable, type Queryable } from '../store/db.js';
import type { ExecutionChange } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';

export interface StartNextInput {
  statusDetails?: Record<string, string> | undefined;
  stepTimeoutInMinutes?: number | undefined;
}

/** An UpdateJobExecution whose status is known to be one a device may set. */
export interface DeviceUpdate {
  thingName: string;
  jobId: string;
  status: ExecutionStatus;
  statusDetails?: Record<string, string> | undefined;
  expectedVersion?: number | undefined;
  executionNumber?: number | undefined;
  /** 1..10080 minutes, or -1 to clear the step timer. */
  stepTimeoutInMinutes?: number | undefined;
}

type DeviceWrite =
  | { kind: 'start-next'; thingName: string; input: StartNextInput }
  | { kind: 'update'; thingName: string; input: DeviceUpdate };

type Outcome = { ok: true; row: ExecutionWithDocument | undefined } | { ok: false; error: unknown };

interface Queued {
  write: DeviceWrite;
  settle(outcome: Outcome): void;
}

/** Large enough that a full batch amortises its commit; small enough that its statements stay short. */
const MAX_BATCH = 200;
/** Batches in the database at once: overlaps one batch's commit with the next one's statements. */
const MAX_CONCURRENT_BATCHES = 4;

function stateOf(row: ExecutionWithDocument) {
  return { status: row.status, statusDetails: row.statusDetails, versionNumber: row.versionNumber };
}

/** Checks an UpdateJobExecution against the execution as it is under the lock; the change, or the rejection. */
function checkUpdate(
  input: DeviceUpdate,
  current: ExecutionWithDocument | undefined,
): DeviceStatusChange | FleetJobsError {
  if (current === undefined) {
    const which = input.executionNumber === undefined ? '' : ` with executionNumber ${input.executionNumber}`;
    return new FleetJobsError(
      'ResourceNotFound',
      `no execution of job ${input.jobId} on thing ${input.thingName}${which}`,
    );
  }
  const verdict = deviceTransition(current.status, input.status);
  if (!verdict.ok) {
    return new FleetJobsError(verdict.code, verdict.message, { executionState: stateOf(current) });
  }
  if (input.expectedVersion !== undefined && input.expectedVersion !== current.versionNumber) {
    return new FleetJobsError(
      'VersionMismatch',
      `expectedVersion ${input.expectedVersion} does not match versionNumber ${current.versionNumber}`,
      { executionState: stateOf(current) },
    );
  }
  return {
    thingName: input.thingName,
    jobId: input.jobId,
    executionNumber: current.executionNumber,
    claim: false,
    expectedVersion: current.versionNumber,
    status: input.status,
    statusDetails: input.statusDetails,
    stepTimeoutInMinutes: input.stepTimeoutInMinutes,
  };
}

interface BatchRead {
  /** The executions the updates name, by thing. */
  currents: Map<string, ExecutionWithDocument>;
  /** The head of each thing that asks for its next execution. */
  heads: Map<string, ExecutionWithDocument>;
}

/** The batch's read: the executions its writes apply to. Two statements, sent with the lock. */
async function readBatch(tx: Queryable, writes: readonly DeviceWrite[]): Promise<BatchRead> {
  const updates = writes.flatMap((w) => (w.kind === 'update' ? [w.input] : []));
  const starts = writes.flatMap((w) => (w.kind === 'start-next' ? [w.thingName] : []));
  const [currentRows, headRows] = await Promise.all([
    selectExecutionsByKey(tx, updates),
    selectHeadExecutions(tx, starts),
  ]);
  return {
    currents: new Map(currentRows.map((r) => [r.thingName, r] as const)),
    heads: new Map(headRows.map((r) => [r.thingName, r] as const)),
  };
}

/**
 * Each write checked on its own against what was read: its outcome (a rejection, or an answer without a change),
 * or the change to apply, whose outcome is filled in once it is applied.
 */
function decideBatch(
  writes: readonly DeviceWrite[],
  { currents, heads }: BatchRead,
): { out: Outcome[]; changeOf: (DeviceStatusChange | undefined)[] } {
  const out: Outcome[] = [];
  const changeOf: (DeviceStatusChange | undefined)[] = [];
  for (const w of writes) {
    let change: DeviceStatusChange | undefined;
    if (w.kind === 'update') {
      const checked = checkUpdate(w.input, currents.get(w.thingName));
      if (checked instanceof FleetJobsError) out.push({ ok: false, error: checked });
      else change = checked;
    } else {
      const head = heads.get(w.thingName);
      // [protocol §3] Nothing pending, or an IN_PROGRESS head: answered as it is, unchanged.
      if (head === undefined || head.status !== 'QUEUED') out.push({ ok: true, row: head });
      else {
        change = {
          thingName: w.thingName,
          jobId: head.jobId,
          executionNumber: head.executionNumber,
          claim: true,
          expectedVersion: head.versionNumber,
          status: 'IN_PROGRESS',
          statusDetails: w.input.statusDetails,
          stepTimeoutInMinutes: w.input.stepTimeoutInMinutes,
        };
      }
    }
    // Its outcome is the updated row, filled in below.
    if (change !== undefined) out.push({ ok: true, row: undefined });
    changeOf.push(change);
  }
  return { out, changeOf };
}

/** One guarded UPDATE for every accepted change; fills in their outcomes and returns their ExecutionChanges. */
async function applyBatch(
  tx: Queryable,
  writes: readonly DeviceWrite[],
  read: BatchRead,
  decided: { out: Outcome[]; changeOf: (DeviceStatusChange | undefined)[] },
  now: Date,
): Promise<{ outcomes: Outcome[]; changes: ExecutionChange[] }> {
  const { out, changeOf } = decided;
  const accepted = changeOf.filter((c): c is DeviceStatusChange => c !== undefined);
  const updated = new Map(
    (await updateExecutionsByDevice(tx, accepted, now)).map((r) => [r.thingName, r] as const),
  );
  const changes: ExecutionChange[] = [];
  writes.forEach((w, i) => {
    const change = changeOf[i];
    if (change === undefined) return;
    const row = updated.get(w.thingName);
    // The thing lock makes every guard hold; a miss means a writer that skipped the lock.
    if (row === undefined) throw new FleetJobsError('Internal', 'the execution changed while it was updated');
    out[i] = { ok: true, row };
    const previous = w.kind === 'update' ? read.currents.get(w.thingName) : read.heads.get(w.thingName);
    changes.push({
      jobId: row.jobId,
      thingName: row.thingName,
      executionNumber: row.executionNumber,
      status: row.status,
      previousStatus: (previous as ExecutionWithDocument).status,
    });
  });
  return { outcomes: out, changes };
}

/**
 * One transaction for a batch of writes to distinct things, through the write funnel in its four steps: lock
 * the things, read what the writes apply to (sent with the lock), decide each write and apply every accepted
 * change in one guarded UPDATE, then the after-change step for all of them. Returns each write's outcome, in
 * order. Throws when the transaction fails as a whole.
 */
async function runBatch(deps: ServiceDeps, writes: readonly DeviceWrite[]): Promise<Outcome[]> {
  const now = deps.clock();
  const { outcomes, changes } = await deps.db.transaction((tx) =>
    writeExecutions(tx, now, {
      lock: writes.map((w) => w.thingName),
      read: (tx) => readBatch(tx, writes),
      change: (_locked, read) => applyBatch(tx, writes, read, decideBatch(writes, read), now),
    }),
  );
  if (changes.length > 0) deps.outboxWritten();
  return outcomes;
}

/** runBatch, its duration and size observed for GET /metrics whether it commits or not. */
async function timedBatch(deps: ServiceDeps, writes: readonly DeviceWrite[]): Promise<Outcome[]> {
  const startedAt = performance.now();
  try {
    return await runBatch(deps, writes);
  } finally {
    deps.metrics?.batchTransaction((performance.now() - startedAt) / 1000, writes.length);
  }
}

/** Gathers device writes into batches for one service (one ServiceDeps). */
class DeviceBatcher {
  private queue: Queued[] = [];
  /** Things with a write in a running batch: their next write waits for it. */
  private readonly busy = new Set<string>();
  private running = 0;
  private scheduled = false;

  constructor(private readonly deps: ServiceDeps) {}

  submit(write: DeviceWrite): Promise<ExecutionWithDocument | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        write,
        settle: (o) => (o.ok ? resolve(o.row) : reject(o.error)),
      });
      if (this.scheduled) return;
      // Requests decoded in the same turn of the event loop join one batch.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    });
  }

  private flush(): void {
    while (this.running < MAX_CONCURRENT_BATCHES && this.queue.length > 0) {
      const batch: Queued[] = [];
      const rest: Queued[] = [];
      const things = new Set<string>();
      for (const q of this.queue) {
        const name = q.write.thingName;
        // A thing already in this batch, or busy, keeps its place (and its later writes theirs) in the queue.
        if (batch.length < MAX_BATCH && !this.busy.has(name) && !things.has(name)) {
          batch.push(q);
          things.add(name);
        } else {
          rest.push(q);
          things.add(name);
        }
      }
      if (batch.length === 0) return;
      this.queue = rest;
      for (const name of batch.map((q) => q.write.thingName)) this.busy.add(name);
      this.running += 1;
      void this.execute(batch).finally(() => {
        for (const q of batch) this.busy.delete(q.write.thingName);
        this.running -= 1;
        this.flush();
      });
    }
  }

  private async execute(batch: readonly Queued[]): Promise<void> {
    try {
      const outcomes = await timedBatch(
        this.deps,
        batch.map((q) => q.write),
      );
      batch.forEach((q, i) => q.settle(outcomes[i] as Outcome));
    } catch (error) {
      // A database that went away fails every request at once (InternalError); running each again alone would
      // only make them wait for it again.
      if (batch.length === 1 || isStoreUnavailable(error)) {
        for (const q of batch) q.settle({ ok: false, error });
        return;
      }
      this.deps.log.warn(
        { err: error, size: batch.length },
        'device batch failed; running its requests alone',
      );
      await Promise.all(
        batch.map((q) =>
          timedBatch(this.deps, [q.write]).then(
            ([o]) => q.settle(o as Outcome),
            (err: unknown) => q.settle({ ok: false, error: err }),
          ),
        ),
      );
    }
  }
}

const batchers = new WeakMap<ServiceDeps, DeviceBatcher>();

/** The batcher of a service: every caller holding the same deps shares its batches. */
export function deviceBatcher(deps: ServiceDeps): DeviceBatcher {
  let b = batchers.get(deps);
  if (b === undefined) batchers.set(deps, (b = new DeviceBatcher(deps)));
  return b;
}
