import { describe, expect, it } from 'vitest';
import { createBackoff, createRetryPolicies, RecentMap } from '../../agent/backoff.js';

describe('reconnect back-off', () => {
  it('doubles up to the cap, stays within [ceiling/2, ceiling] and starts over after reset', () => {
    const low = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    low.reset();
    expect(low.next()).toBe(50);
    const high = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('spreads delays with jitter', () => {
    const delays = new Set(Array.from({ length: 20 }, () => createBackoff({ initialMs: 1000 }).next()));
    expect(delays.size).toBeGreaterThan(1);
  });
});

describe('retry policies', () => {
  it('back off each request kind on its own: throttled updates do not lengthen the start-next wait', () => {
    const policies = createRetryPolicies({ initialMs: 100, maxMs: 1000, random: () => 1 });
    for (let i = 0; i < 5; i++) policies.update.next();
    // The sixth update retry waits 8-16 s; the first start-next retry still 0.25-0.5 s.
    expect(policies.update.next()).toBeGreaterThanOrEqual(8_000);
    expect(policies.startNext.next()).toBeLessThanOrEqual(500);
    expect([policies.reconnect.next(), policies.reconnect.next()]).toEqual([100, 200]);
    // A reset (an accepted update) starts only its own kind over.
    policies.update.reset();
    expect(policies.update.next()).toBeLessThanOrEqual(500);
    expect(policies.startNext.next()).toBeGreaterThanOrEqual(500);
  });
});

describe('recent executions', () => {
  it('forgets the oldest key beyond its capacity', () => {
    const m = new RecentMap<number>(2);
    m.set('a#1', 1);
    m.set('b#1', 2);
    m.set('c#1', 3);
    expect([m.get('a#1'), m.get('b#1'), m.get('c#1')]).toEqual([undefined, 2, 3]);
  });
});
