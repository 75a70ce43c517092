/**
 * Outbox dispatcher: publishes the notification rows that execution changes wrote to `outbox` in their own
 * transaction ([protocol §3]), in id order at QoS 1, and deletes each row once it is published. It runs when
 * `kick()` says a transaction committed rows, and every `pollMs` so that rows left by a crash (or by another
 * instance that died) are published after restart. Rows are locked with SKIP LOCKED, so instances share the
 * outbox; a crash between publish and delete publishes a row again (at least once).
 *
 * A `fanout` row (a change that touched many things, store/notifications.ts) is expanded into notify and
 * notify-next rows one chunk of things per transaction, beside the publishing: the next chunk is written while
 * the rows of the previous one go out. A chunk commits with the row's progress, so a dispatcher that dies
 * between chunks leaves the rest for the next one, and SKIP LOCKED keeps two dispatchers off one row.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import { deleteOutboxRows, lockOutboxBatch, selectFanoutPending, type OutboxEntry } from '../store/outbox.js';
import { expandFanoutChunk } from '../store/notifications.js';
import { writeFanoutEvents } from '../store/events.js';
import type { TopicScheme } from '../protocol/topics.js';
import { notifyNextPayload } from '../device/payloads.js';
import { isTerminal } from '../protocol/states.js';

export interface OutboxDispatcherDeps {
  db: Db;
  clock: () => Date;
  log: Logger;
  topics: TopicScheme;
  /** Publishes at QoS 1; resolves once the broker has taken the message. */
  publish(topic: string, payload: Buffer, qos: 1): Promise<void>;
}

export interface OutboxDispatcher {
  start(): void;
  close(): Promise<void>;
  /** Signals that rows were committed; publishing starts on the next turn of the event loop. */
  kick(): void;
  /** Publishes everything in the outbox now; resolves with the number of rows published. */
  runOnce(now?: Date): Promise<number>;
}

const BATCH = 500;
/**
 * Things per fanout expansion transaction. Each holds its things' locks until it commits, so a device of one
 * of them waits at most one chunk (some tens of ms); larger chunks add little throughput.
 */
export const DEFAULT_FANOUT_CHUNK = 2_000;

function message(
  entry: OutboxEntry,
  topics: TopicScheme,
  now: Date,
): { topic: string; payload: Buffer } | undefined {
  switch (entry.kind) {
    case 'notify':
      if (entry.thingName === null) return undefined;
      return { topic: topics.notify(entry.thingName), payload: Buffer.from(JSON.stringify(entry.payload)) };
    case 'notify-next': {
      if (entry.thingName === null) return undefined;
      // A head that has since ended or no longer exists was superseded: the change that ended it wrote a later
      // row announcing the new head, so announcing this one now would only show devices a finished execution.
      if (entry.jobId !== null && (entry.head === null || isTerminal(entry.head.status))) return undefined;
      const head =
        entry.head === null || entry.jobId === null || entry.executionNumber === null
          ? null
          : { ...entry.head, jobId: entry.jobId, executionNumber: entry.executionNumber };
      return {
        topic: topics.notifyNext(entry.thingName),
        payload: Buffer.from(JSON.stringify(notifyNextPayload(head, entry.createdAt, now))),
      };
    }
    case 'event':
      if (entry.topic === null) return undefined;
      return { topic: entry.topic, payload: Buffer.from(JSON.stringify(entry.payload)) };
    default:
      return undefined;
  }
}

function isJobEvent(entry: OutboxEntry): boolean {
  return entry.kind === 'event' && (entry.payload as { eventType?: unknown } | null)?.eventType === 'JOB';
}

/**
 * One line per job completed, canceled or deleted, whatever ended it (a device, a worker, an operator), once it is
 * published: every instance's dispatcher shares the outbox, so the fleet logs each event once (twice only after a
 * crash between publish and delete).
 */
function logJobEvents(log: Logger, entries: readonly OutboxEntry[]): void {
  for (const entry of entries) {
    const { operation, jobId, status, reasonCode, jobProcessDetails } = entry.payload as {
      operation: string;
      jobId: string;
      status: string;
      reasonCode?: string;
      jobProcessDetails?: Record<string, number>;
    };
    log.info({ jobId, status, reasonCode, jobProcessDetails }, `job ${operation}`);
  }
}

export function createOutboxDispatcher(
  deps: OutboxDispatcherDeps,
  options: { pollMs?: number; fanoutChunk?: number } = {},
): OutboxDispatcher {
  const pollMs = options.pollMs ?? 1000;
  const fanoutChunk = options.fanoutChunk ?? DEFAULT_FANOUT_CHUNK;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let again = false;
  let kicked = false;
  let closed = false;

  const batch = async (now: Date) => {
    const { n, jobEvents } = await deps.db.transaction(async (tx) => {
      const entries = await lockOutboxBatch(tx, BATCH);
      const sends: Promise<void>[] = [];
      for (const entry of entries) {
        const m = message(entry, deps.topics, now);
        if (m !== undefined) sends.push(deps.publish(m.topic, m.payload, 1));
      }
      await Promise.all(sends);
      await deleteOutboxRows(
        tx,
        entries.map((e) => e.id),
      );
      return { n: entries.length, jobEvents: entries.filter(isJobEvent) };
    });
    logJobEvents(deps.log, jobEvents);
    return n;
  };

  /**
   * Expands fanout rows chunk by chunk and writes the events they carry until none is left, calling chunkDone
   * after each commit. Events are written in statements of their own: they need no
   * thing lock, and a chunk's transaction holds its things' locks, which devices and sweeps wait for.
   */
  const expand = async (now: Date | undefined, chunkDone: () => void): Promise<void> => {
    while (await selectFanoutPending(deps.db)) {
      const at = now ?? deps.clock();
      const expanded = await deps.db.transaction((tx) => expandFanoutChunk(tx, fanoutChunk, at));
      const written = await writeFanoutEvents(deps.db, fanoutChunk, at);
      if (!expanded && written === 0) return;
      chunkDone();
    }
  };

  const drain = async (now?: Date): Promise<number> => {
    let total = 0;
    let expanding = true;
    let wake: () => void = () => {};
    const woken = () => new Promise<void>((resolve) => (wake = resolve));
    let next = woken();
    const expansion = expand(now, () => wake()).finally(() => {
      expanding = false;
      wake();
    });
    // Its failure is thrown below, once publishing has caught up; until then it must not count as unhandled.
    expansion.catch(() => undefined);
    try {
      for (;;) {
        // Read before the batch: rows of a chunk that committed while the batch ran are published next turn.
        const wasExpanding = expanding;
        const n = await batch(now ?? deps.clock());
        total += n;
        if (n === BATCH) continue;
        if (!wasExpanding) break;
        await next;
        next = woken();
      }
    } catch (err) {
      await expansion.catch(() => undefined);
      throw err;
    }
    await expansion;
    return total;
  };

  const runOnce = (now?: Date): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      try {
        do {
          again = false;
          total += await drain(now);
        } while (again && !closed);
      } finally {
        running = undefined;
      }
      return total;
    })();
    return running;
  };

  const runLogged = () => {
    if (closed) return;
    runOnce().catch((err: unknown) =>
      deps.log.error({ err }, 'outbox dispatch failed; retrying on the next poll'),
    );
  };

  return {
    start() {
      closed = false;
      timer = setInterval(runLogged, pollMs);
      timer.unref();
      runLogged();
    },
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
    kick() {
      if (kicked || closed) return;
      kicked = true;
      setImmediate(() => {
        kicked = false;
        runLogged();
      });
    },
    runOnce,
  };
}
