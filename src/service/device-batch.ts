/**
 * Micro-batching of device writes (StartNextPendingJobExecution and UpdateJobExecution), protocol fact 5.
 * Requests that arrive while earlier ones are in the database are queued, and each batch takes as many as have
 * gathered: one statement in autocommit (the write funnel's lock, read, guarded UPDATE and notifications for the
 * whole batch, writeDeviceBatch; a single statement is atomic, so no BEGIN and COMMIT round trips) and one commit,
 * instead of the same and an fsync'd commit per request. A request arriving at an idle service still runs at
 * once, alone.
 *
 * What a device can observe is unchanged:
 * - every request gets the reply and error code it would get alone: each is checked on its own against its own
 *   execution, under its thing's lock, and a rejected one changes nothing;
 * - a batch holds at most one request per thing, and a thing's next request waits until the batch holding its
 *   previous one has committed, so per-thing order is arrival order;
 * - if a batch's statement fails as a whole (a database error; a guard that failed makes it raise, so nothing
 *   commits), each of its requests runs again alone, so one request's failure never fails another's; a database
 *   that is unreachable fails them all.
 */
import { performance } from 'node:perf_hooks';
import { FleetJobsError } from '../protocol/errors.js';
import { deviceTransition, type ExecutionStatus } from '../protocol/states.js';
import type { ExecutionWithDocument } from '../store/executions.js';
import { isStoreUnavailable } from '../store/db.js';
import { writeDeviceBatch, type DeviceBatchResult, type DeviceBatchWrite } from '../store/funnel.js';
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

/** Why an UpdateJobExecution does not apply to the execution as it is under the lock; undefined if it does. */
function rejectUpdate(
  input: DeviceUpdate,
  current: ExecutionWithDocument | undefined,
): FleetJobsError | undefined {
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
  return undefined;
}

function toBatchWrite(w: DeviceWrite): DeviceBatchWrite {
  if (w.kind === 'start-next') {
    return {
      kind: 'start-next',
      thingName: w.thingName,
      status: 'IN_PROGRESS',
      statusDetails: w.input.statusDetails,
      stepTimeoutInMinutes: w.input.stepTimeoutInMinutes,
    };
  }
  return { kind: 'update', ...w.input };
}

/**
 * A write's outcome from what the batch statement left: an applied write answers with its changed execution; one
 * that did not apply is answered from its execution as it was (unchanged), checked here on its own: a start-next
 * with nothing to claim gets its head as it is ([protocol §3]), an update its rejection. The statement and these rules
 * agree on what applies; a write they disagree on was left unchanged and gets InternalError.
 */
function outcomeOf(w: DeviceWrite, result: DeviceBatchResult | undefined): Outcome {
  if (result?.applied === true) return { ok: true, row: result.row };
  const current = result?.row;
  if (w.kind === 'start-next') {
    if (current === undefined || current.status !== 'QUEUED') return { ok: true, row: current };
  } else {
    const rejection = rejectUpdate(w.input, current);
    if (rejection !== undefined) return { ok: false, error: rejection };
  }
  return { ok: false, error: new FleetJobsError('Internal', 'the execution changed while it was updated') };
}

/**
 * One statement for a batch of writes to distinct things, through the write funnel (writeDeviceBatch), committed
 * on its own. Returns each write's outcome, in order. Throws when the statement fails as a whole.
 */
async function runBatch(deps: ServiceDeps, writes: readonly DeviceWrite[]): Promise<Outcome[]> {
  const results = await writeDeviceBatch(deps.db, deps.clock(), writes.map(toBatchWrite));
  if (results.some((r) => r?.applied === true)) deps.outboxWritten();
  return writes.map((w, i) => outcomeOf(w, results[i]));
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
