import { EventEmitter } from 'node:events';
import { LIMITS, isValidThingName } from '../src/protocol/limits.js';
import { createTopicScheme } from '../src/protocol/topics.js';
import type {
  ExecutionAccepted,
  JobExecution,
  NotifyEvent,
  NotifyNextEvent,
} from '../src/protocol/messages.js';
import { createRetryPolicies } from './backoff.js';
import { createJobRunner, errorMessage, isExecution, minutesFor } from './job.js';
import { AgentClosed, createSession, token } from './session.js';
import type { Agent, AgentEvents, AgentLogger, AgentOptions } from './types.js';

const silent: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Waits for a promise at most ms; true when it settled in time. Leaves no timer behind. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The device agent ([protocol §7]): one persistent MQTT session per thing (session.ts), one job at a time (job.ts).
 * It asks start-next at connect and after each job, runs what it gets, reports progress and the outcome through
 * update with expectedVersion, notices cancellation through notify / notify-next, and never leaves an execution
 * IN_PROGRESS behind on purpose.
 */
export function createAgent(options: AgentOptions): Agent {
  if (!isValidThingName(options.thingName)) {
    throw new Error(`thing name ${options.thingName} must match [a-zA-Z0-9:_-]{1,128}`);
  }
  const thing = options.thingName;
  const topics = createTopicScheme(options.topicRoot);
  const log = options.logger ?? silent;
  const stepTimeoutSeconds = options.stepTimeoutSeconds ?? 3600;
  const killGraceMs = options.killGraceMs ?? 5000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const retry = createRetryPolicies(options.reconnect);
  const emitter = new EventEmitter();
  emitter.on('error', () => {});
  const emit = <E extends keyof AgentEvents>(event: E, ...args: AgentEvents[E]) => {
    emitter.emit(event, ...args);
  };

  const session = createSession({
    url: options.url,
    thingName: thing,
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    topics,
    log,
    requestTimeoutMs,
    reconnect: retry.reconnect,
    onReady: () => {
      emit('connect');
      // No state is pushed on connect: ask for the next job (this also resumes one left IN_PROGRESS).
      kick();
    },
    onOffline: () => emit('offline'),
    onError: (err) => emit('error', err),
    onNotify,
    onNotifyNext,
  });
  const runner = createJobRunner({
    thingName: thing,
    topics,
    session,
    log,
    emit,
    handlers: options.handlers ?? {},
    ...(options.handlerDir === undefined ? {} : { handlerDir: options.handlerDir }),
    ...(options.runAsUsers === undefined ? {} : { runAsUsers: options.runAsUsers }),
    stepTimeoutSeconds,
    killGraceMs,
    updateRetry: retry.update,
  });

  let runningDone: Promise<boolean> = Promise.resolve(true);
  let pumping = false;
  let wanted = false;
  let stopRequested = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const stopped = () => stopRequested || session.closed.aborted;

  function onNotifyNext(event: NotifyNextEvent): void {
    const job = runner.current;
    const next = event.execution;
    if (job === undefined) {
      if (next) kick();
      return;
    }
    // While a job runs it is IN_PROGRESS, so it heads the queue; another head means it left the pending set.
    if (next?.jobId !== job.jobId || next.executionNumber !== job.executionNumber) void runner.verify(job);
  }

  function onNotify(event: NotifyEvent): void {
    const job = runner.current;
    if (job === undefined) {
      if (Array.isArray(event.jobs?.QUEUED) && event.jobs.QUEUED.length > 0) kick();
      return;
    }
    const list = (value: unknown) => (Array.isArray(value) ? (value as Array<Partial<JobExecution>>) : []);
    const listed = [...list(event.jobs?.IN_PROGRESS), ...list(event.jobs?.QUEUED)];
    // The lists hold at most 10 entries, so absence from a full list proves nothing.
    if (listed.length >= LIMITS.MAX_PENDING_LIST) return;
    const present = listed.some((e) => e?.jobId === job.jobId && e.executionNumber === job.executionNumber);
    if (!present) void runner.verify(job);
  }

  async function startNext(): Promise<{ execution?: JobExecution; startToken: string }> {
    const startToken = token();
    const reply = await session.request<ExecutionAccepted>(
      topics.request(thing, 'StartNextPendingJobExecution'),
      {
        // start-next sets these on a QUEUED execution only, which tells a fresh start from a resume.
        statusDetails: { agentStart: startToken },
        stepTimeoutInMinutes: minutesFor(stepTimeoutSeconds),
      },
    );
    if (!reply.accepted) throw new Error(`start-next rejected: ${reply.body.code} ${reply.body.message}`);
    return { ...(reply.body.execution ? { execution: reply.body.execution } : {}), startToken };
  }

  function kick(): void {
    wanted = true;
    if (!pumping && !session.closed.aborted) void pump();
  }

  /** Asks start-next again after the start-next back-off. */
  function retryLater(): void {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(kick, retry.startNext.next());
  }

  async function pump(): Promise<void> {
    pumping = true;
    try {
      while (wanted && !stopped() && session.ready) {
        wanted = false;
        let next: Awaited<ReturnType<typeof startNext>>;
        try {
          next = await startNext();
          retry.startNext.reset();
        } catch (err) {
          if (err instanceof AgentClosed) return;
          log.warn({ err: errorMessage(err) }, 'start-next failed; retrying');
          return retryLater();
        }
        if (next.execution && !isExecution(next.execution)) {
          log.error({ execution: next.execution }, 'start-next returned a malformed execution');
          return retryLater();
        }
        if (next.execution && !stopped()) {
          runningDone = runner.run(next.execution, next.startToken);
          if (!(await runningDone)) return retryLater();
          wanted = true;
        }
      }
    } finally {
      pumping = false;
    }
  }

  return {
    get connected() {
      return session.ready;
    },
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return () => emitter.off(event, listener as (...args: unknown[]) => void);
    },
    start: () => session.start(),
    async stop(stopOptions = {}) {
      stopRequested = true;
      clearTimeout(retryTimer);
      const job = runner.current;
      if (job) {
        const timeoutMs = stopOptions.timeoutMs ?? 10_000;
        if (!(await settlesWithin(runningDone, timeoutMs))) {
          runner.interrupt(job);
          await settlesWithin(runningDone, killGraceMs + requestTimeoutMs * 2);
        }
      }
      await session.close();
    },
  };
}
