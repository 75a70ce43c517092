import { path } from './api-client.js';
import { table, time } from './format.js';
import { maxResults } from './things.js';
import { UsageError, type CommandSpec } from './types.js';

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

function details(a: Attempt | undefined): string {
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
              details(e.attempts[e.attempts.length - 1]),
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
};
