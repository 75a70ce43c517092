import { createRequire } from 'node:module';
import type { CronExpression, CronExpressionParser } from 'cron-parser';

const require = createRequire(import.meta.url);
let parser: typeof CronExpressionParser | undefined;

/** cron-parser (with luxon under it) is loaded by the first expression read, not by every start of the server. */
export function cronExpressionParser(): typeof CronExpressionParser {
  parser ??= (require('cron-parser') as typeof import('cron-parser')).CronExpressionParser;
  return parser;
}

/**
 * The one reader of maintenance-window cron expressions, used by CreateJob / CreateJobTemplate validation and by
 * the rollout worker alike, so an expression accepted at creation is one the rollout can evaluate. Two forms:
 * AWS's cron(minute hour day-of-month month day-of-week year), whose weekdays run 1 (SUN) to 7 (SAT) and which
 * needs `?` in one of its two day fields, and a five-field cron expression (weekdays 0 or 7 SUN to 6 SAT). The
 * year field is checked for shape only: windows recur.
 */

export class CronSyntaxError extends Error {}

const AWS_DOW_ITEM = /^(\*|\?|L|[A-Z]{3}(-[A-Z]{3})?|\d+(-\d+)?)(\/\d+|#\d+|L)?$/;
const YEAR_RE = /^(\*|\d{4}(-\d{4})?(\/\d+)?)(,(\d{4}(-\d{4})?))*$/;

/** An AWS day-of-week item with its weekday numbers moved from 1-7 to cron-parser's 0-6 (steps, `#n` kept). */
function awsWeekday(item: string): string {
  const m = AWS_DOW_ITEM.exec(item.toUpperCase());
  if (!m) throw new CronSyntaxError(`day-of-week ${item} is not a weekday (1-7 or SUN-SAT)`);
  const base = (m[1] ?? '').replace(/\d+/g, (d) => {
    const n = Number(d);
    if (n < 1 || n > 7) throw new CronSyntaxError(`day-of-week ${d} is outside 1 (SUN) to 7 (SAT)`);
    return String(n - 1);
  });
  return base + (m[4] ?? '');
}

/** The five-field expression cron-parser reads for an AWS cron(...) or a five-field cron; throws CronSyntaxError. */
export function toFiveFieldCron(expression: string): string {
  const trimmed = expression.trim();
  const wrapped = /^cron\((.*)\)$/.exec(trimmed);
  if (!wrapped) {
    const fields = trimmed.split(/\s+/);
    if (fields.length !== 5) throw new CronSyntaxError('a cron expression has five fields');
    return fields.join(' ').replace(/\?/g, '*');
  }
  const fields = (wrapped[1] ?? '').trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new CronSyntaxError('cron(...) has six fields: minute hour day-of-month month day-of-week year');
  }
  const [minute, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?')) {
    throw new CronSyntaxError('cron(...) needs ? in exactly one of day-of-month and day-of-week');
  }
  if (!YEAR_RE.test(year)) throw new CronSyntaxError(`year ${year} is not a year (such as * or 2026)`);
  const weekday = dow.split(',').map(awsWeekday).join(',');
  return [minute, hour, dom, month, weekday].join(' ').replace(/\?/g, '*');
}

/** The expression as an iterator over its start times in UTC, from just after `currentDate`; throws CronSyntaxError. */
export function parseCron(expression: string, currentDate: Date): CronExpression {
  const cron = toFiveFieldCron(expression);
  try {
    return cronExpressionParser().parse(cron, { currentDate, tz: 'UTC', strict: false });
  } catch (err) {
    throw new CronSyntaxError(err instanceof Error ? err.message : String(err));
  }
}
