import { FleetJobsError } from '../protocol/errors.js';
import { cronExpressionParser } from './cron.js';

/**
 * Schedule expressions of recurring jobs, in EventBridge Scheduler's spelling: `rate(N minutes|hours|days)` or
 * `cron(minute hour day-of-month month day-of-week year)` (AWS's six fields; `?` means any, the year must be
 * `*`), or a plain five-field cron expression. Cron runs in the schedule's IANA timezone; rates tick at
 * multiples of their period since 1970-01-01T00:00Z, so every instance computes the same ticks. Ticks fall on
 * whole minutes.
 */
export interface ScheduleExpression {
  /** The latest tick at or before `date`. */
  latestAtOrBefore(date: Date): Date;
  /** The first tick strictly after `date`. */
  nextAfter(date: Date): Date;
}

const MINUTE = 60_000;
const UNITS: Record<string, number> = {
  minute: MINUTE,
  minutes: MINUTE,
  hour: 60 * MINUTE,
  hours: 60 * MINUTE,
  day: 24 * 60 * MINUTE,
  days: 24 * 60 * MINUTE,
};

function invalid(message: string): never {
  throw new FleetJobsError('InvalidRequest', message);
}

export function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    invalid(`scheduleExpressionTimezone ${timezone} is not an IANA timezone (e.g. Europe/Paris, UTC)`);
  }
}

export function parseScheduleExpression(expression: string, timezone: string): ScheduleExpression {
  checkTimezone(timezone);
  const rate = /^rate\(\s*(\d+)\s+([a-z]+)\s*\)$/.exec(expression.trim());
  if (rate) {
    const n = Number(rate[1]);
    const unit = UNITS[rate[2] ?? ''];
    if (unit === undefined || !Number.isSafeInteger(n) || n < 1 || n > 100_000) {
      invalid('scheduleExpression rate(...) is rate(N minutes|hours|days) with N from 1 to 100000');
    }
    const period = n * unit;
    return {
      latestAtOrBefore: (d) => new Date(Math.floor(d.getTime() / period) * period),
      nextAfter: (d) => new Date((Math.floor(d.getTime() / period) + 1) * period),
    };
  }
  let fields: string[];
  const wrapped = /^cron\((.*)\)$/.exec(expression.trim());
  if (wrapped) {
    fields = (wrapped[1] ?? '').trim().split(/\s+/);
    if (fields.length !== 6 || fields[5] !== '*') {
      invalid('scheduleExpression cron(...) has six fields, minute hour day month weekday year, the year *');
    }
    fields = fields.slice(0, 5);
  } else {
    fields = expression.trim().split(/\s+/);
    if (fields.length !== 5) {
      invalid(
        'scheduleExpression is rate(...), cron(...) or a five-field cron expression (minute hour day month weekday)',
      );
    }
  }
  const cron = fields.join(' ').replace(/\?/g, '*');
  const at = (d: Date) => cronExpressionParser().parse(cron, { currentDate: d, tz: timezone, strict: false });
  try {
    at(new Date(0));
  } catch {
    invalid(`scheduleExpression ${expression} is not a cron expression; e.g. cron(0 3 * * ? *) or 0 3 * * *`);
  }
  return {
    // prev() is strictly before its start: start a millisecond after `date` to include a tick at `date`.
    latestAtOrBefore: (d) =>
      at(new Date(d.getTime() + 1))
        .prev()
        .toDate(),
    nextAfter: (d) => at(d).next().toDate(),
  };
}

/** The job a tick creates: `{scheduleId}-{YYYYMMDDTHHMMZ}` (UTC), unique per schedule and tick. */
export function tickJobId(scheduleId: string, tick: Date): string {
  const iso = tick.toISOString();
  return `${scheduleId}-${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}
