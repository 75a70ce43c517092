import type { Logger } from 'pino';

/** What every worker returns: `runOnce(now)` does one full pass at the given time (tests pass their clock). */
export interface Worker {
  start(): void;
  close(): Promise<void>;
  /** One full pass at `now` (default: the service clock); resolves with the number of rows it changed. */
  runOnce(now?: Date): Promise<number>;
}

export interface LoopOptions {
  name: string;
  /** Time between passes. */
  tickMs: number;
  log: Logger;
  clock: () => Date;
  pass: (now: Date) => Promise<number>;
}

/**
 * Runs a pass every tickMs, one at a time, from start() until close(). A failed pass is logged and retried on
 * the next tick: a worker never stops because the database was away for a while.
 */
export function createLoop(options: LoopOptions): Worker {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let closed = true;

  const runOnce = (now?: Date): Promise<number> => {
    const previous = running ?? Promise.resolve(0);
    const next = previous.then(
      () => options.pass(now ?? options.clock()),
      () => options.pass(now ?? options.clock()),
    );
    running = next;
    return next.finally(() => {
      if (running === next) running = undefined;
    });
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      runOnce().then(
        (n) => {
          if (n > 0) options.log.debug({ worker: options.name, changed: n }, 'worker pass');
          schedule();
        },
        (err: unknown) => {
          options.log.error({ err, worker: options.name }, 'worker pass failed; retrying on the next tick');
          schedule();
        },
      );
    }, options.tickMs);
    timer.unref();
  };

  return {
    runOnce,
    start() {
      if (!closed) return;
      closed = false;
      schedule();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}

/** Lets other work (device requests) run between two batches of a long pass. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One batch of a sweep: rows it took and rows it changed; null when another instance holds the sweep. */
export type BatchResult = { taken: number; changed: number } | null;

/**
 * Runs batch after batch until one comes back short or another instance holds the sweep, kicking the outbox
 * dispatcher after every batch that took rows and letting device requests run in between. Returns the rows
 * changed.
 */
export async function drainBatches(
  batch: () => Promise<BatchResult>,
  batchSize: number,
  outboxWritten: () => void,
): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await batch();
    if (result === null) return total;
    total += result.changed;
    if (result.taken > 0) outboxWritten();
    if (result.taken < batchSize) return total;
    await yieldToEventLoop();
  }
}
