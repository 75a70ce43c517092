import { path } from './api-client.js';
import { table, time } from './format.js';
import { pairs, maxResults } from './things.js';
import { UsageError, type CommandSpec, type Context } from './types.js';

interface Schedule {
  scheduleId: string;
  scheduleExpression: string;
  scheduleExpressionTimezone?: string;
  jobTemplateArn?: string;
  concurrencyPolicy?: string;
  state: string;
  nextRunAt?: number;
}

interface Run {
  scheduledAt: number;
  jobId: string;
  outcome: string;
  reason?: string;
  jobStatus?: string;
}

function targetList(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return (value as string[]).flatMap((v) => v.split(',')).filter((v) => v.trim() !== '');
}

function show(ctx: Context, s: Schedule): void {
  if (ctx.json) ctx.printJson(s);
  else
    ctx.print(
      `${s.scheduleId}: ${s.state}, ${s.scheduleExpression} (${s.scheduleExpressionTimezone ?? 'UTC'}), next run ${time(s.nextRunAt) || 'none'}`,
    );
}

export const schedulesCommands: Record<string, CommandSpec> = {
  put: {
    usage:
      "<scheduleId> --expression 'rate(1 hour)'|'cron(0 3 * * ? *)' --template ID --target T... [--timezone TZ] " +
      '[--template-version N] [--param key=value]... [--concurrency SKIP|ALLOW] [--paused] [--description TEXT]',
    summary: 'create or replace a recurring job (PutJobSchedule, fleetjobs extension)',
    positionals: { min: 1, max: 1 },
    options: {
      expression: { type: 'string' },
      template: { type: 'string' },
      target: { type: 'string', multiple: true },
      timezone: { type: 'string' },
      'template-version': { type: 'string' },
      param: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      paused: { type: 'boolean' },
      description: { type: 'string' },
    },
    async run(ctx, [id], values) {
      if (typeof values.expression !== 'string') throw new UsageError('--expression is required');
      if (typeof values.template !== 'string') throw new UsageError('--template is required');
      const targets = targetList(values.target);
      if (targets.length === 0) throw new UsageError('name at least one --target');
      const body: Record<string, unknown> = {
        scheduleExpression: values.expression,
        jobTemplateArn: values.template,
        targets,
      };
      if (typeof values.timezone === 'string') body.scheduleExpressionTimezone = values.timezone;
      if (typeof values.description === 'string') body.description = values.description;
      if (typeof values.concurrency === 'string') body.concurrencyPolicy = values.concurrency;
      if (values.paused === true) body.state = 'PAUSED';
      if (values['template-version'] !== undefined) {
        const n = Number(values['template-version']);
        if (!Number.isInteger(n)) throw new UsageError('--template-version takes an integer');
        body.jobTemplateVersion = n;
      }
      const params = pairs(values.param, '--param');
      if (params !== undefined) body.documentParameters = params;
      show(ctx, await ctx.client.request<Schedule>('PUT', path`/job-schedules/${id as string}`, { body }));
      return 0;
    },
  },
  describe: {
    usage: '<scheduleId>',
    summary: 'show a recurring job (DescribeJobSchedule)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [id]) {
      show(ctx, await ctx.client.request<Schedule>('GET', path`/job-schedules/${id as string}`));
      return 0;
    },
  },
  list: {
    usage: '[--max-results N]',
    summary: 'list recurring jobs (ListJobSchedules, every page)',
    positionals: { min: 0, max: 0 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, _args, values) {
      const schedules = await ctx.client.list<Schedule>('/job-schedules', 'schedules', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ schedules });
      else {
        ctx.print(
          table(
            ['SCHEDULE', 'STATE', 'EXPRESSION', 'TIMEZONE', 'CONCURRENCY', 'NEXT RUN'],
            schedules.map((s) => [
              s.scheduleId,
              s.state,
              s.scheduleExpression,
              s.scheduleExpressionTimezone,
              s.concurrencyPolicy,
              time(s.nextRunAt),
            ]),
          ),
        );
      }
      return 0;
    },
  },
  pause: {
    usage: '<scheduleId>',
    summary: 'stop creating jobs (PauseJobSchedule)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [id]) {
      show(ctx, await ctx.client.request<Schedule>('PUT', path`/job-schedules/${id as string}/pause`));
      return 0;
    },
  },
  resume: {
    usage: '<scheduleId>',
    summary: 'create jobs again from the next tick (ResumeJobSchedule)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [id]) {
      show(ctx, await ctx.client.request<Schedule>('PUT', path`/job-schedules/${id as string}/resume`));
      return 0;
    },
  },
  delete: {
    usage: '<scheduleId>',
    summary: 'delete a recurring job; the jobs it created stay (DeleteJobSchedule)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [id]) {
      await ctx.client.request('DELETE', path`/job-schedules/${id as string}`);
      if (ctx.json) ctx.printJson({});
      else ctx.print(`deleted job schedule ${id as string}`);
      return 0;
    },
  },
  runs: {
    usage: '<scheduleId> [--max-results N]',
    summary: "a recurring job's past runs, newest first (ListJobScheduleRuns)",
    positionals: { min: 1, max: 1 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, [id], values) {
      const runs = await ctx.client.list<Run>(path`/job-schedules/${id as string}/runs`, 'runs', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ runs });
      else {
        ctx.print(
          table(
            ['TICK', 'JOB', 'OUTCOME', 'JOB STATUS', 'REASON'],
            runs.map((r) => [time(r.scheduledAt), r.jobId, r.outcome, r.jobStatus, r.reason]),
          ),
        );
      }
      return 0;
    },
  },
};
