/**
 * Keyed token buckets, the one rate limiter of the service (device requests over MQTT and HTTPS, operator
 * requests, failed device logins): each key (a thing name, an operator key id) may spend `burst` requests at
 * once and earns `perSecond` back. In memory and per process: with several instances behind a shared subscription each
 * enforces its own share, which bounds the total at instances × rate.
 */
export interface RateLimit {
  /** Sustained requests per second per key. */
  perSecond: number;
  /** Requests a key may send at once before the sustained rate applies. */
  burst: number;
}

export interface RateLimiter {
  /** Spends one token of `key`; false when the bucket is empty (the caller throttles). */
  take(key: string): boolean;
  /** Seconds until `key` has a token again (0 when it has one). */
  retryAfterSeconds(key: string): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept before idle full ones are dropped; a full bucket carries no state worth keeping. */
const MAX_BUCKETS = 100_000;

export function createRateLimiter(
  limit: RateLimit,
  clock: () => number = () => performance.now(),
): RateLimiter {
  const buckets = new Map<string, Bucket>();
  const refill = (key: string, now: number): Bucket => {
    let b = buckets.get(key);
    if (b === undefined) {
      if (buckets.size >= MAX_BUCKETS) prune(now);
      b = { tokens: limit.burst, at: now };
      buckets.set(key, b);
      return b;
    }
    b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.perSecond);
    b.at = now;
    return b;
  };
  const prune = (now: number) => {
    for (const [key, b] of buckets) {
      if (b.tokens + ((now - b.at) / 1000) * limit.perSecond >= limit.burst) buckets.delete(key);
    }
    // Every bucket is busy: forget the oldest half rather than grow without bound.
    if (buckets.size >= MAX_BUCKETS) {
      let n = buckets.size / 2;
      for (const key of buckets.keys()) {
        if (n-- <= 0) break;
        buckets.delete(key);
      }
    }
  };
  return {
    take(key) {
      const b = refill(key, clock());
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    retryAfterSeconds(key) {
      const b = refill(key, clock());
      return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / limit.perSecond);
    },
  };
}
