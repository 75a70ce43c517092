import { describe, expect, it } from 'vitest';
import { CronSyntaxError, parseCron, toFiveFieldCron } from '../../src/service/cron.js';
import { inMaintenanceWindow, initialJobState, ratePerMinute } from '../../src/service/rollout.js';
import { trippedAbortCriterion } from '../../src/workers/rollout.js';
import type { JobProcessDetails } from '../../src/store/jobs.js';

const details = (d: Partial<JobProcessDetails>): JobProcessDetails => ({
  numberOfCanceledThings: 0,
  numberOfSucceededThings: 0,
  numberOfFailedThings: 0,
  numberOfRejectedThings: 0,
  numberOfQueuedThings: 0,
  numberOfInProgressThings: 0,
  numberOfRemovedThings: 0,
  numberOfTimedOutThings: 0,
  ...d,
});

describe('rollout rate', () => {
  it('is maximumPerMinute alone, and unlimited without a rollout configuration', () => {
    expect(ratePerMinute({ maximumPerMinute: 7 }, { released: 1000, succeeded: 1000 })).toBe(7);
    expect(ratePerMinute(null, { released: 0, succeeded: 0 })).toBeUndefined();
  });

  it('multiplies an exponential rate per quantum reached and caps it', () => {
    const config = {
      maximumPerMinute: 300,
      exponentialRate: {
        baseRatePerMinute: 50,
        incrementFactor: 2,
        rateIncreaseCriteria: { numberOfSucceededThings: 1000 },
      },
    };
    expect(ratePerMinute(config, { released: 5000, succeeded: 999 })).toBe(50);
    expect(ratePerMinute(config, { released: 0, succeeded: 1000 })).toBe(100);
    expect(ratePerMinute(config, { released: 0, succeeded: 2999 })).toBe(200);
    expect(ratePerMinute(config, { released: 0, succeeded: 3000 })).toBe(300);
  });
});

describe('maintenance windows', () => {
  it('reads AWS cron with ? and a year, and numbers weekdays from 1 = SUN', () => {
    expect(toFiveFieldCron('cron(0 2 ? * 2 *)')).toBe('0 2 * * 1');
    expect(toFiveFieldCron('cron(30 1 * * ? *)')).toBe('30 1 * * *');
    expect(toFiveFieldCron('15 3 * * MON')).toBe('15 3 * * MON');
  });

  it('moves AWS weekday numbers but not steps or #n, and refuses what AWS refuses', () => {
    expect(toFiveFieldCron('cron(0 2 ? * 2-6/2 *)')).toBe('0 2 * * 1-5/2');
    expect(toFiveFieldCron('cron(0 2 ? * 6#3 2026)')).toBe('0 2 * * 5#3');
    expect(toFiveFieldCron('cron(0 2 ? * 7L *)')).toBe('0 2 * * 6L');
    expect(toFiveFieldCron('cron(0 2 ? * mon-fri *)')).toBe('0 2 * * MON-FRI');
    for (const bad of [
      'cron(0 1 ? * 0 *)',
      'cron(0 1 ? * 8 *)',
      'cron(0 1 * * 2 *)',
      'cron(0 1 ? * 2 )',
      'cron(0 1 ? * 2 soon)',
    ]) {
      expect(() => toFiveFieldCron(bad), bad).toThrow(CronSyntaxError);
    }
    expect(() => parseCron('cron(0 1 30 2 ? *)', new Date('2026-01-01T00:00Z')).next()).toThrow(
      CronSyntaxError,
    );
  });

  it('is open from the cron start for durationInMinutes', () => {
    const w = [{ startTime: 'cron(0 2 * * ? *)', durationInMinutes: 60 }];
    expect(inMaintenanceWindow(w, new Date('2026-05-04T01:59:59Z'))).toBe(false);
    expect(inMaintenanceWindow(w, new Date('2026-05-04T02:00:00Z'))).toBe(true);
    expect(inMaintenanceWindow(w, new Date('2026-05-04T02:59:59Z'))).toBe(true);
    expect(inMaintenanceWindow(w, new Date('2026-05-04T03:00:00Z'))).toBe(false);
  });

  it('honours the weekday (2026-05-04 is a Monday)', () => {
    const mondays = [{ startTime: 'cron(0 2 ? * 2 *)', durationInMinutes: 30 }];
    expect(inMaintenanceWindow(mondays, new Date('2026-05-04T02:10:00Z'))).toBe(true);
    expect(inMaintenanceWindow(mondays, new Date('2026-05-05T02:10:00Z'))).toBe(false);
  });
});

describe('job start state', () => {
  it('is SCHEDULED before startTime and rollout-managed with a rate or a schedule', () => {
    const now = new Date('2026-05-04T00:00:00Z');
    expect(initialJobState({}, now)).toEqual({ status: 'IN_PROGRESS', rolloutPending: false });
    expect(initialJobState({ schedulingConfig: { startTime: '2026-05-04T01:00' } }, now)).toEqual({
      status: 'SCHEDULED',
      rolloutPending: true,
    });
    expect(initialJobState({ jobExecutionsRolloutConfig: { maximumPerMinute: 5 } }, now)).toEqual({
      status: 'IN_PROGRESS',
      rolloutPending: true,
    });
    expect(initialJobState({ schedulingConfig: { endTime: '2026-05-05T00:00' } }, now)).toEqual({
      status: 'IN_PROGRESS',
      rolloutPending: false,
    });
  });
});

describe('abort criteria', () => {
  const criteria = [
    {
      failureType: 'TIMED_OUT' as const,
      action: 'CANCEL' as const,
      thresholdPercentage: 10,
      minNumberOfExecutedThings: 100,
    },
    {
      failureType: 'ALL' as const,
      action: 'CANCEL' as const,
      thresholdPercentage: 25,
      minNumberOfExecutedThings: 4,
    },
  ];
  it('waits for the minimum number of executed things', () => {
    expect(trippedAbortCriterion(criteria, details({ numberOfFailedThings: 3 }))).toBeUndefined();
  });
  it('trips the first criterion whose failure share reaches the threshold', () => {
    const tripped = trippedAbortCriterion(
      criteria,
      details({ numberOfSucceededThings: 3, numberOfRejectedThings: 1, numberOfQueuedThings: 50 }),
    );
    expect(tripped).toMatchObject({ executed: 4, failures: 1, criterion: { failureType: 'ALL' } });
    expect(
      trippedAbortCriterion(criteria, details({ numberOfSucceededThings: 4, numberOfFailedThings: 1 })),
    ).toBeUndefined();
  });
});
