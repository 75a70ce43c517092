import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';

/** [protocol §4] The retry decision and its delay, as the write funnel takes them (fj_should_retry, fj_retry_delay_ms). */
describe.each(BACKENDS)('retry rules (%s)', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb(backend);
  });
  afterAll(async () => {
    await t.close();
  });

  const shouldRetry = async (
    status: string,
    retryAttempt: number,
    before: { failed?: number; timedOut?: number },
    config: unknown,
  ) => {
    const rows = await t.db.query<{ ok: boolean }>(
      `SELECT fj_should_retry($1, $2, $3, $4, $5::jsonb) AS ok`,
      [status, retryAttempt, before.failed ?? 0, before.timedOut ?? 0, config],
    );
    return rows[0]?.ok;
  };
  const delayMs = async (config: unknown, attempt: number, random: number) => {
    const rows = await t.db.query<{ ms: number | null }>(
      `SELECT fj_retry_delay_ms($1::jsonb, $2, $3) AS ms`,
      [config, attempt, random],
    );
    return rows[0]?.ms;
  };

  it('retries a type within its own criterion and within ALL', async () => {
    const config = {
      criteriaList: [
        { failureType: 'FAILED', numberOfRetries: 2 },
        { failureType: 'ALL', numberOfRetries: 3 },
      ],
    };
    expect(await shouldRetry('FAILED', 0, {}, config)).toBe(true);
    expect(await shouldRetry('FAILED', 2, { failed: 2 }, config)).toBe(false);
    expect(await shouldRetry('TIMED_OUT', 2, { failed: 2 }, config)).toBe(true);
    expect(await shouldRetry('TIMED_OUT', 3, { timedOut: 1 }, config)).toBe(false);
    expect(
      await shouldRetry(
        'FAILED',
        0,
        {},
        { criteriaList: [{ failureType: 'TIMED_OUT', numberOfRetries: 5 }] },
      ),
    ).toBe(false);
  });

  it('never goes beyond 10 retries in all', async () => {
    const config = { criteriaList: [{ failureType: 'ALL', numberOfRetries: 50 }] };
    expect(await shouldRetry('FAILED', 9, {}, config)).toBe(true);
    expect(await shouldRetry('FAILED', 10, {}, config)).toBe(false);
  });

  it('draws a full-jitter delay under the exponential cap, and none without a delay', async () => {
    const config = { criteriaList: [], retryDelaySeconds: 10, backoffFactor: 3, maxDelaySeconds: 60 };
    expect(await delayMs(config, 1, 0.999999)).toBe(9_999);
    expect(await delayMs(config, 2, 0.5)).toBe(15_000);
    expect(await delayMs(config, 3, 0.999999)).toBe(59_999);
    expect(await delayMs(config, 3, 0)).toBe(0);
    expect(await delayMs({ criteriaList: [] }, 4, 0.5)).toBeNull();
  });
});
