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
