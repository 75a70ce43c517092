import { describe, expect, it } from 'vitest';
import { createBackoff } from '../../agent/backoff.js';
import { createJobRunner, type JobRunner } from '../../agent/job.js';
import type { Reply } from '../../agent/session.js';
import type { AgentEvents, JobHandler } from '../../agent/types.js';
import type { JobExecution } from '../../src/protocol/messages.js';
import { createTopicScheme } from '../../src/protocol/topics.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Sent {
  topic: string;
  payload: Record<string, unknown>;
}

/** A job runner whose session answers each request with `answer`, and what it sent and emitted. */
function runnerWith(
  handlers: Record<string, JobHandler>,
  answer: (sent: Sent) => Reply<unknown>,
): { runner: JobRunner; sent: Sent[]; events: Array<[keyof AgentEvents, unknown]> } {
  const sent: Sent[] = [];
  const events: Array<[keyof AgentEvents, unknown]> = [];
  const runner = createJobRunner({
    thingName: 'dev-1',
    topics: createTopicScheme(),
    session: {
      closed: new AbortController().signal,
      request: <T>(topic: string, payload: Record<string, unknown>) => {
        sent.push({ topic, payload });
        return Promise.resolve(answer({ topic, payload }) as Reply<T>);
      },
    },
    log: silent,
    emit: (event, ...args) => events.push([event, args[0]]),
    handlers,
    stepTimeoutSeconds: 60,
    killGraceMs: 50,
    updateRetry: createBackoff({ initialMs: 1, maxMs: 1 }),
  });
  return { runner, sent, events };
}

const accepted = (versionNumber: number): Reply<unknown> => ({
  accepted: true,
  body: { timestamp: 0, executionState: { status: 'IN_PROGRESS', versionNumber } },
});

const execution = (operation: string): JobExecution => ({
  jobId: 'job-1',
  executionNumber: 1,
  status: 'IN_PROGRESS',
  statusDetails: { agentStart: 'token-1' },
  queuedAt: 0,
  lastUpdatedAt: 0,
  versionNumber: 2,
  jobDocument: { operation },
});

describe('the job runner', () => {
  it('ends a job the service refuses as gone: the handler is aborted, job:canceled emitted, no outcome sent', async () => {
    let aborted = false;
    const { runner, sent, events } = runnerWith(
      {
        work: async (ctx) => {
          await ctx.progress({ step: 'download' }).catch(() => undefined);
          aborted = ctx.signal.aborted;
          throw new Error('stopped');
        },
      },
      () => ({ accepted: false, body: { code: 'TerminalStateReached', message: 'canceled', timestamp: 0 } }),
    );
    expect(await runner.run(execution('work'), 'token-1')).toBe(true);
    expect(aborted).toBe(true);
    expect(sent.map((s) => s.payload.status)).toEqual(['IN_PROGRESS']);
    expect(events.map(([e]) => e)).toEqual(['job:start', 'job:canceled']);
    expect(runner.current).toBeUndefined();
  });

  it('reports the outcome of a job the agent interrupts as stopped, with the version its progress produced', async () => {
    let version = 2;
    const { runner, sent, events } = runnerWith(
      {
        work: (ctx) =>
          new Promise((_, reject) => {
            void ctx.progress({ step: 'install' });
            ctx.signal.addEventListener('abort', () => reject(new Error('interrupted')));
          }),
      },
      () => accepted(++version),
    );
    const done = runner.run(execution('work'), 'token-1');
    const job = runner.current;
    if (job === undefined) throw new Error('no job is running');
    expect(job.state).toEqual({ phase: 'running' });
    await job.queue;
    runner.interrupt(job);
    expect(job.state).toEqual({ phase: 'stopping' });
    expect(await done).toBe(true);
    expect(job.state).toEqual({ phase: 'reporting' });
    const final = sent.at(-1)?.payload;
    expect(final).toMatchObject({
      status: 'FAILED',
      expectedVersion: 3,
      statusDetails: { reason: 'the agent was stopped: operation work failed: interrupted' },
    });
    expect(events.map(([e]) => e)).toEqual(['job:start', 'job:done']);
  });

  it('never reruns an execution it finished: a second delivery reports the same outcome again', async () => {
    let runs = 0;
    const { runner, sent } = runnerWith(
      {
        work: () => {
          runs++;
          return Promise.resolve({ result: 'ok' });
        },
      },
      () => accepted(3),
    );
    await runner.run(execution('work'), 'token-1');
    await runner.run(execution('work'), 'token-2');
    expect(runs).toBe(1);
    expect(sent.map((s) => [s.payload.status, s.payload.statusDetails])).toEqual([
      ['SUCCEEDED', { result: 'ok' }],
      ['SUCCEEDED', { result: 'ok' }],
    ]);
  });
});
