export interface BackoffOptions {
  /** First delay ceiling in milliseconds (default 1000). */
  initialMs?: number;
  /** Largest delay in milliseconds (default 60000). */
  maxMs?: number;
  random?: () => number;
}

export interface Backoff {
  next(): number;
  reset(): void;
}

/**
 * Capped exponential back-off with jitter: the ceiling doubles per attempt up to maxMs, and each delay is
 * drawn between half the ceiling and the ceiling, so a fleet that lost its broker does not come back in step.
 */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initial = options.initialMs ?? 1000;
  const max = options.maxMs ?? 60_000;
  const random = options.random ?? Math.random;
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(max, initial * 2 ** attempt);
      if (ceiling < max) attempt++;
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    },
    reset() {
      attempt = 0;
    },
  };
}

/**
 * A back-off of its own for each kind of request the agent repeats, so that one kind failing (an overloaded
 * service throttling updates) does not lengthen the waits of another, and a success resets only its own kind.
 */
export interface RetryPolicies {
  /** Between MQTT connection attempts. */
  reconnect: Backoff;
  /** Before asking start-next again after it failed, returned a malformed execution, or a job could not be run. */
  startNext: Backoff;
  /** Before sending an update again that the service throttled (RequestThrottled) or failed (InternalError). */
  update: Backoff;
}

export function createRetryPolicies(reconnect?: BackoffOptions): RetryPolicies {
  return {
    reconnect: createBackoff(reconnect),
    startNext: createBackoff({ initialMs: 500, maxMs: 30_000 }),
    update: createBackoff({ initialMs: 500, maxMs: 30_000 }),
  };
}

/** The last `capacity` keys seen, with a value each: finished executions, keyed by jobId#executionNumber. */
export class RecentMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
  }
}
