import { path, type ApiClient } from './api-client.js';
import { progressLine, table, time, type ProcessDetails } from './format.js';
import { pairs, maxResults } from './things.js';
import { UsageError, type CommandSpec, type Context } from './types.js';

interface Job {
  jobId: string;
  jobArn?: string;
  status: string;
  targetSelection?: string;
  targets?: string[];
  description?: string;
  comment?: string;
  reasonCode?: string;
  forceCanceled?: boolean;
  createdAt?: number;
  lastUpdatedAt?: number;
  completedAt?: number;
  jobProcessDetails?: ProcessDetails;
}

/** `2 failed, 1 timed out` for the executions that did not succeed; empty when none. */
function unsuccessfulThings(d: ProcessDetails | undefined): string {
  const parts: string[] = [];
  if ((d?.numberOfFailedThings ?? 0) > 0) parts.push(`${d?.numberOfFailedThings} failed`);
  if ((d?.numberOfTimedOutThings ?? 0) > 0) parts.push(`${d?.numberOfTimedOutThings} timed out`);
  if ((d?.numberOfRejectedThings ?? 0) > 0) parts.push(`${d?.numberOfRejectedThings} rejected`);
  return parts.join(', ');
}

/** Jobs that no longer change: watch stops there. */
const FINAL = new Set(['COMPLETED', 'CANCELED']);

function list(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return (value as string[])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

export function jsonObject(text: string, flag: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag} is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${flag} must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

async function describeJob(client: ApiClient, jobId: string): Promise<Job> {
  return (await client.request<{ job: Job }>('GET', path`/jobs/${jobId}`)).job;
}

function seconds(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(n) || n < 0.05 || n > 3600) {
    throw new UsageError(`${flag} takes a number of seconds from 0.05 to 3600`);
  }
  return n;
}

/** Opens GET /events for one job; undefined when the server has none or refuses it (watch then only polls). */
async function openEvents(ctx: Context, jobId: string, signal: AbortSignal): Promise<Response | undefined> {
  try {
    return await ctx.client.stream(`/events?jobId=${encodeURIComponent(jobId)}`, signal);
  } catch {
    return undefined;
  }
}

/**
 * Reads the server-sent events and calls onJobEvent for each event about the job, so watch redraws at once
 * instead of at its next poll. Any failure of the stream just leaves watch polling.
 */
async function followEvents(res: Response | undefined, jobId: string, onJobEvent: () => void): Promise<void> {
  if (res?.body == null) return;
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        const data = block
          .split(/\r?\n/)
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        try {
          if ((JSON.parse(data) as { jobId?: unknown }).jobId === jobId) onJobEvent();
        } catch {
          // a comment, a keep-alive or a non-JSON event: not about this job
        }
      }
    }
  } catch {
    // aborted, or the stream broke: polling goes on
  }
}

async function watch(ctx: Context, jobId: string, intervalSeconds: number): Promise<number> {
  const tty = ctx.io.out.isTTY === true && !ctx.json;
  const stop = new AbortController();
  const outer = ctx.io.signal;
  const onOuterAbort = () => stop.abort();
  outer?.addEventListener('abort', onOuterAbort);
  let dirty: boolean;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  // The stream is open before the first DescribeJob, so no change after that read can go unannounced.
  const events = followEvents(await openEvents(ctx, jobId, stop.signal), jobId, poke);
  stop.signal.addEventListener('abort', () => wake?.());
  let last = '';
  try {
    for (;;) {
      dirty = false;
      const job = await describeJob(ctx.client, jobId);
      const line = ctx.json
        ? JSON.stringify({ jobId, status: job.status, jobProcessDetails: job.jobProcessDetails ?? {} })
        : progressLine(job.status, job.jobProcessDetails);
      if (line !== last) {
        // On a terminal the bar redraws in place; in a pipe or a log each change is a line of its own.
        if (tty) ctx.io.out.write(`\r\x1b[2K${line}`);
        else ctx.print(line);
        last = line;
      }
      if (FINAL.has(job.status) || job.status === 'DELETION_IN_PROGRESS') {
        if (tty) ctx.io.out.write('\n');
        if (job.status !== 'COMPLETED') {
          ctx.io.err.write(`job ${jobId} is ${job.status}\n`);
          return 3;
        }
        const unsuccessful = unsuccessfulThings(job.jobProcessDetails);
        if (unsuccessful === '') return 0;
        ctx.io.err.write(
          `job ${jobId} completed with ${unsuccessful}; fleetjobs executions list --job ${jobId} --details ` +
            'shows which devices and why\n',
        );
        return 4;
      }
      if (stop.signal.aborted) {
        if (tty) ctx.io.out.write('\n');
        return 130;
      }
      if (!dirty) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalSeconds * 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    outer?.removeEventListener('abort', onOuterAbort);
    stop.abort();
    await events;
  }
}

export const jobsCommands: Record<string, CommandSpec> = {
  create: {
    usage:
      '<jobId> --target thing/NAME|thinggroup/NAME|ARN... (--document JSON | --document-file FILE | --template ID) ' +
      '[--description TEXT] [--continuous] [--param key=value]... [--in-progress-timeout MINUTES] [--priority N] ' +
      '[--job-config JSON]',
    summary:
      'create a job (CreateJob); --job-config adds any other CreateJob field (rollout, retry, abort...)',
    positionals: { min: 1, max: 1 },
    options: {
      target: { type: 'string', multiple: true },
      document: { type: 'string' },
      'document-file': { type: 'string' },
      template: { type: 'string' },
      description: { type: 'string' },
      continuous: { type: 'boolean' },
      param: { type: 'string', multiple: true },
      'in-progress-timeout': { type: 'string' },
      priority: { type: 'string' },
      'job-config': { type: 'string' },
    },
    async run(ctx, [jobId], values) {
      const targets = list(values.target);
      if (targets.length === 0) throw new UsageError('name at least one --target');
      if (values.document !== undefined && values['document-file'] !== undefined) {
        throw new UsageError('give --document or --document-file, not both');
      }
      const body: Record<string, unknown> = {
        ...(typeof values['job-config'] === 'string' ? jsonObject(values['job-config'], '--job-config') : {}),
        targets,
      };
      if (typeof values.document === 'string') body.document = values.document;
      if (typeof values['document-file'] === 'string')
        body.document = await ctx.io.readFile(values['document-file']);
      if (typeof values.template === 'string') body.jobTemplateArn = values.template;
      if (typeof values.description === 'string') body.description = values.description;
      if (values.continuous === true) body.targetSelection = 'CONTINUOUS';
      if (values.priority !== undefined) {
        const priority = Number(values.priority);
        if (!Number.isInteger(priority)) throw new UsageError('--priority takes an integer');
        body.priority = priority;
      }
      const params = pairs(values.param, '--param');
      if (params !== undefined) body.documentParameters = params;
      if (values['in-progress-timeout'] !== undefined) {
        const minutes = Number(values['in-progress-timeout']);
        if (!Number.isInteger(minutes)) throw new UsageError('--in-progress-timeout takes whole minutes');
        body.timeoutConfig = {
          ...(body.timeoutConfig as object | undefined),
          inProgressTimeoutInMinutes: minutes,
        };
      }
      const res = await ctx.client.request<{ jobId: string; jobArn: string }>(
        'PUT',
        path`/jobs/${jobId as string}`,
        {
          body,
        },
      );
      if (ctx.json) ctx.printJson(res);
      else ctx.print(`created job ${res.jobId} (${res.jobArn})`);
      return 0;
    },
  },
  cancel: {
    usage: '<jobId> [--force] [--comment TEXT] [--reason-code CODE]',
    summary: 'cancel a job (CancelJob); --force also cancels IN_PROGRESS executions',
    positionals: { min: 1, max: 1 },
    options: { force: { type: 'boolean' }, comment: { type: 'string' }, 'reason-code': { type: 'string' } },
    async run(ctx, [jobId], values) {
      const body: Record<string, unknown> = {};
      if (typeof values.comment === 'string') body.comment = values.comment;
      if (typeof values['reason-code'] === 'string') body.reasonCode = values['reason-code'];
      const res = await ctx.client.request<{ jobId: string }>('PUT', path`/jobs/${jobId as string}/cancel`, {
        query: { force: values.force === true ? true : undefined },
        body,
      });
      if (ctx.json) ctx.printJson(res);
      else ctx.print(`canceled job ${res?.jobId ?? jobId}${values.force === true ? ' (forced)' : ''}`);
      return 0;
    },
  },
  describe: {
    usage: '<jobId>',
    summary: 'show a job and its progress (DescribeJob)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [jobId]) {
      if (ctx.json) {
        ctx.printJson(await ctx.client.request('GET', path`/jobs/${jobId as string}`));
        return 0;
      }
      const job = await describeJob(ctx.client, jobId as string);
      const rows: [string, unknown][] = [
        ['jobId', job.jobId],
        ['jobArn', job.jobArn],
        ['status', job.status + (job.forceCanceled ? ' (forced)' : '')],
        ['targetSelection', job.targetSelection],
        ['targets', (job.targets ?? []).join(', ')],
        ['description', job.description],
        ['comment', job.comment],
        ['reasonCode', job.reasonCode],
        ['createdAt', time(job.createdAt)],
        ['lastUpdatedAt', time(job.lastUpdatedAt)],
        ['completedAt', time(job.completedAt)],
        ['progress', progressLine(job.status, job.jobProcessDetails)],
      ];
      ctx.print(
        table(
          ['FIELD', 'VALUE'],
          rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [k, String(v)]),
        ),
      );
      return 0;
    },
  },
  list: {
    usage:
      '[--status STATUS] [--target-selection SNAPSHOT|CONTINUOUS] [--thing-group NAME] [--max-results N]',
    summary: 'list jobs (ListJobs, every page)',
    positionals: { min: 0, max: 0 },
    options: {
      status: { type: 'string' },
      'target-selection': { type: 'string' },
      'thing-group': { type: 'string' },
      'max-results': { type: 'string' },
    },
    async run(ctx, _args, values) {
      const jobs = await ctx.client.list<Job>('/jobs', 'jobs', {
        query: {
          status: values.status as string | undefined,
          targetSelection: values['target-selection'] as string | undefined,
          thingGroupName: values['thing-group'] as string | undefined,
        },
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ jobs });
      else {
        ctx.print(
          table(
            ['JOB', 'STATUS', 'TYPE', 'CREATED', 'COMPLETED'],
            jobs.map((j) => [j.jobId, j.status, j.targetSelection, time(j.createdAt), time(j.completedAt)]),
          ),
        );
      }
      return 0;
    },
  },
  watch: {
    usage: '<jobId> [--interval SECONDS]',
    summary:
      'show a live progress bar until the job ends: COMPLETED with every execution SUCCEEDED (exit 0), ' +
      'CANCELED (exit 3), COMPLETED with failed, timed-out or rejected executions (exit 4); follows GET /events ' +
      'and polls DescribeJob every --interval seconds (default 2)',
    positionals: { min: 1, max: 1 },
    options: { interval: { type: 'string' } },
    async run(ctx, [jobId], values) {
      return watch(ctx, jobId as string, seconds(values.interval, '--interval', 2));
    },
  },
  delete: {
    usage: '<jobId> [--force]',
    summary: 'delete a job and its executions (DeleteJob); --force for a job still in progress',
    positionals: { min: 1, max: 1 },
    options: { force: { type: 'boolean' } },
    async run(ctx, [jobId], values) {
      await ctx.client.request('DELETE', path`/jobs/${jobId as string}`, {
        query: { force: values.force === true ? true : undefined },
      });
      if (ctx.json) ctx.printJson({ jobId, deleted: true });
      else ctx.print(`deleting job ${jobId}`);
      return 0;
    },
  },
};
