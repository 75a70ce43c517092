import { path } from './api-client.js';
import { table, time } from './format.js';
import { maxResults } from './things.js';
import { UsageError, type CommandSpec, type Context } from './types.js';

interface ExecutionSummary {
  status: string;
  queuedAt?: number;
  startedAt?: number;
  lastUpdatedAt?: number;
  executionNumber?: number;
  retryAttempt?: number;
}
interface ForJob {
  thingArn: string;
  jobExecutionSummary: ExecutionSummary;
}
interface ForThing {
  jobId: string;
  jobExecutionSummary: ExecutionSummary;
}
interface Execution extends ExecutionSummary {
  jobId: string;
  thingArn?: string;
  forceCanceled?: boolean;
  versionNumber?: number;
  statusDetails?: { detailsMap?: Record<string, string> };
  approximateSecondsBeforeTimedOut?: number;
}

/** The thing name of a thing ARN (`arn:...:thing/NAME`). */
const thingOf = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

const details = (map: Record<string, string> | undefined) =>
  Object.entries(map ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

async function describeExecution(ctx: Context, jobId: string, thingName: string, executionNumber?: number) {
  return (
    await ctx.client.request<{ execution: Execution }>('GET', path`/things/${thingName}/jobs/${jobId}`, {
      query: { executionNumber },
    })
  ).execution;
}

interface Row {
  jobId: string;
  thingName: string;
  summary: ExecutionSummary;
}

interface Attempt {
  executionNumber: number;
  status: string;
  statusDetails?: { detailsMap?: Record<string, string> };
}

interface DeadLetter {
  jobId: string;
  thingName: string;
  jobStatus: string;
  status: string;
  executionNumber: number;
  retryAttempt: number;
  lastUpdatedAt?: number;
  attempts: Attempt[];
}

function attemptDetails(a: Attempt | undefined): string {
  return Object.entries(a?.statusDetails?.detailsMap ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export const executionsCommands: Record<string, CommandSpec> = {
  'dead-letters': {
    usage: '[--status FAILED|TIMED_OUT] [--job JOB_ID] [--thing THING] [--max-results N]',
    summary: 'list executions that failed after their last retry (GET /executions?retriesExhausted=true)',
    positionals: { min: 0, max: 0 },
    options: {
      status: { type: 'string' },
      job: { type: 'string' },
      thing: { type: 'string' },
      'max-results': { type: 'string' },
    },
    async run(ctx, _args, values) {
      const status = values.status as string | undefined;
      if (status !== undefined && status !== 'FAILED' && status !== 'TIMED_OUT') {
        throw new UsageError('--status is FAILED or TIMED_OUT');
      }
      const executions = await ctx.client.list<DeadLetter>('/executions', 'executions', {
        query: {
          retriesExhausted: true,
          status,
          jobId: values.job as string | undefined,
          thingName: values.thing as string | undefined,
        },
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ executions });
      else {
        ctx.print(
          table(
            ['THING', 'JOB', 'STATUS', 'EXECUTION', 'ATTEMPTS', 'LAST UPDATE', 'STATUS DETAILS'],
            executions.map((e) => [
              e.thingName,
              e.jobId,
              e.status,
              e.executionNumber,
              e.attempts.length,
              time(e.lastUpdatedAt),
              attemptDetails(e.attempts[e.attempts.length - 1]),
            ]),
          ),
        );
      }
      return 0;
    },
  },
  retry: {
    usage: '<thingName> <jobId>',
    summary: 'queue a new execution for a FAILED or TIMED_OUT one (RetryJobExecution, fleetjobs extension)',
    positionals: { min: 2, max: 2 },
    async run(ctx, [thingName, jobId]) {
      const res = await ctx.client.request<{ execution: { executionNumber: number; status: string } }>(
        'PUT',
        path`/things/${thingName as string}/jobs/${jobId as string}/retry`,
      );
      if (ctx.json) ctx.printJson(res);
      else
        ctx.print(
          `queued execution ${res.execution.executionNumber} of ${jobId as string} on ${thingName as string}`,
        );
      return 0;
    },
  },
  list: {
    usage: '(--job JOB_ID | --thing THING_NAME) [--status STATUS] [--details] [--max-results N]',
    summary:
      'list the executions of a job (ListJobExecutionsForJob) or of a thing (ListJobExecutionsForThing); ' +
      "--status FAILED shows which devices failed, --details adds each one's statusDetails",
    positionals: { min: 0, max: 0 },
    options: {
      job: { type: 'string' },
      thing: { type: 'string' },
      status: { type: 'string' },
      details: { type: 'boolean' },
      'max-results': { type: 'string' },
    },
    async run(ctx, _args, values) {
      const job = values.job as string | undefined;
      const thing = values.thing as string | undefined;
      if ((job === undefined) === (thing === undefined)) throw new UsageError('give --job or --thing');
      const query = { status: values.status as string | undefined };
      const max = maxResults(values['max-results']);
      const rows: Row[] =
        job !== undefined
          ? (
              await ctx.client.list<ForJob>(path`/jobs/${job}/things`, 'executionSummaries', { query, max })
            ).map((e) => ({ jobId: job, thingName: thingOf(e.thingArn), summary: e.jobExecutionSummary }))
          : (
              await ctx.client.list<ForThing>(path`/things/${thing as string}/jobs`, 'executionSummaries', {
                query,
                max,
              })
            ).map((e) => ({ jobId: e.jobId, thingName: thing as string, summary: e.jobExecutionSummary }));
      const statusDetails =
        values.details === true
          ? await Promise.all(
              rows.map(
                async (r) =>
                  (await describeExecution(ctx, r.jobId, r.thingName, r.summary.executionNumber))
                    .statusDetails?.detailsMap,
              ),
            )
          : undefined;
      if (ctx.json) {
        ctx.printJson({
          executions: rows.map((r, i) => ({
            jobId: r.jobId,
            thingName: r.thingName,
            ...r.summary,
            ...(statusDetails ? { statusDetails: statusDetails[i] ?? {} } : {}),
          })),
        });
        return 0;
      }
      const headers = [
        job !== undefined ? 'THING' : 'JOB',
        'STATUS',
        'EXECUTION',
        'RETRY',
        'STARTED',
        'UPDATED',
      ];
      ctx.print(
        table(
          statusDetails ? [...headers, 'STATUS DETAILS'] : headers,
          rows.map((r, i) => [
            job !== undefined ? r.thingName : r.jobId,
            r.summary.status,
            r.summary.executionNumber,
            r.summary.retryAttempt,
            time(r.summary.startedAt),
            time(r.summary.lastUpdatedAt),
            ...(statusDetails ? [details(statusDetails[i])] : []),
          ]),
        ),
      );
      return 0;
    },
  },
  describe: {
    usage: '<jobId> <thingName> [--execution-number N]',
    summary: 'show one execution with its statusDetails (DescribeJobExecution; the latest unless N is given)',
    positionals: { min: 2, max: 2 },
    options: { 'execution-number': { type: 'string' } },
    async run(ctx, [jobId, thingName], values) {
      const raw = values['execution-number'];
      if (raw !== undefined && (typeof raw !== 'string' || !/^[0-9]{1,15}$/.test(raw))) {
        throw new UsageError('--execution-number takes a whole number');
      }
      const e = await describeExecution(
        ctx,
        jobId as string,
        thingName as string,
        raw === undefined ? undefined : Number(raw),
      );
      if (ctx.json) {
        ctx.printJson({ execution: e });
        return 0;
      }
      const rows: [string, unknown][] = [
        ['jobId', e.jobId],
        ['thingName', thingName],
        ['status', e.status + (e.forceCanceled ? ' (forced)' : '')],
        ['statusDetails', details(e.statusDetails?.detailsMap)],
        ['executionNumber', e.executionNumber],
        ['versionNumber', e.versionNumber],
        ['retryAttempt', e.retryAttempt],
        ['queuedAt', time(e.queuedAt)],
        ['startedAt', time(e.startedAt)],
        ['lastUpdatedAt', time(e.lastUpdatedAt)],
        ['secondsBeforeTimedOut', e.approximateSecondsBeforeTimedOut],
      ];
      ctx.print(
        table(
          ['FIELD', 'VALUE'],
          rows.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => [k, String(v)]),
        ),
      );
      return 0;
    },
  },
};
