import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { LIMITS, isValidJobId, isValidThingName } from '../src/protocol/limits.js';
import { createTopicScheme } from '../src/protocol/topics.js';
import { isExecutionStatus, isTerminal } from '../src/protocol/states.js';
import type {
  ExecutionAccepted,
  JobExecution,
  JobExecutionState,
  NotifyEvent,
  NotifyNextEvent,
  RejectedReply,
  StatusDetails,
  UpdateAccepted,
} from '../src/protocol/messages.js';
import { createBackoff, RecentMap, type BackoffOptions } from './backoff.js';
import { InvalidDocumentError, parseJobDocument, type Action, type JobDocument } from './document.js';
import { checkRunAsUsers, runSteps, toStatusDetails, type Outcome } from './runner.js';

export interface AgentLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface JobContext {
  jobId: string;
  executionNumber: number;
  thingName: string;
  /** The job document as the service sent it. */
  document: Record<string, unknown>;
  /** Aborted when the execution is canceled or removed, when it outlives its timeout, or when the agent stops. */
  signal: AbortSignal;
  /** True when the execution was already IN_PROGRESS when this agent took it (a restart, e.g. after a reboot). */
  resume: boolean;
  /** statusDetails as the service holds them (on a resume: the last progress reported). */
  statusDetails: StatusDetails;
  /** Reports progress (IN_PROGRESS with statusDetails) and restarts the service's step timer. */
  progress(update: { step?: string; percent?: number; details?: Record<string, unknown> }): Promise<void>;
}

/** Resolves: SUCCEEDED with the returned pairs as statusDetails. Throws: FAILED with the message as reason. */
export type JobHandler = (ctx: JobContext) => Promise<Record<string, unknown> | void>;

export interface AgentCredentials {
  /** Sent as the MQTT password with the thing name as user name, unless username is given. */
  token?: string;
  username?: string;
  password?: string;
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
}

export interface AgentOptions {
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  thingName: string;
  /** Defaults to the thing name, so the persistent session survives restarts. */
  clientId?: string;
  credentials?: AgentCredentials;
  /** Handler functions for documents with an `operation` name. */
  handlers?: Record<string, JobHandler>;
  /** Directory of runHandler files. */
  handlerDir?: string;
  /** JOBS_TOPIC_ROOT of the service (default `$aws/things/{thingName}/jobs`). */
  topicRoot?: string;
  logger?: AgentLogger;
  /** Steps and handler functions without their own timeoutSeconds get this one (default 3600). */
  stepTimeoutSeconds?: number;
  /** Between SIGTERM and SIGKILL, and what a handler function gets to return after an abort (default 5000). */
  killGraceMs?: number;
  /** How long to wait for a reply before asking again (default 10000). */
  requestTimeoutMs?: number;
  reconnect?: BackoffOptions;
  /** Users that runAsUser may name besides the agent's own (the agent must be able to switch to them). */
  runAsUsers?: string[];
}

export interface JobStartEvent {
  jobId: string;
  executionNumber: number;
  resume: boolean;
}
export interface StepEvent {
  jobId: string;
  executionNumber: number;
  index: number;
  name: string;
  pid: number;
}
export interface JobDoneEvent {
  jobId: string;
  executionNumber: number;
  status: 'SUCCEEDED' | 'FAILED' | 'REJECTED';
  statusDetails: StatusDetails;
}
export interface JobCanceledEvent {
  jobId: string;
  executionNumber: number;
  reason: string;
}

export interface AgentEvents {
  connect: [];
  offline: [];
  'job:start': [JobStartEvent];
  step: [StepEvent];
  /** The final status was accepted by the service. */
  'job:done': [JobDoneEvent];
  /** The execution was canceled, removed or timed out by the service; the agent stopped working on it. */
  'job:canceled': [JobCanceledEvent];
  error: [Error];
}

export interface Agent {
  start(): Promise<void>;
  /** Lets the current job finish for up to timeoutMs, then stops it and reports it FAILED; disconnects. */
  stop(options?: { timeoutMs?: number }): Promise<void>;
  on<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): () => void;
  readonly connected: boolean;
}

type Reply<T> = { accepted: true; body: T } | { accepted: false; body: RejectedReply };

interface Running {
  jobId: string;
  executionNumber: number;
  version: number;
  controller: AbortController;
  /** The service no longer has it pending: stop reporting. */
  gone?: string;
  stopping?: boolean;
  final?: boolean;
  verifying?: boolean;
  /** Updates are sent one at a time: each carries the version the previous one produced. */
  queue: Promise<unknown>;
}

class RequestTimeout extends Error {}
class AgentClosed extends Error {}

const silent: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };
const GONE_CODES = new Set(['ResourceNotFound', 'TerminalStateReached']);
const RETRY_CODES = new Set(['InternalError', 'RequestThrottled']);

function token(): string {
  return randomBytes(8).toString('hex');
}

function minutesFor(seconds: number): number {
  // The service's step timer backs up the agent's own: it fires a minute after the agent should have acted.
  return Math.min(LIMITS.MAX_TIMEOUT_MINUTES, Math.ceil(seconds / 60) + 1);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/** The fields the agent relies on, checked before it acts on an execution it was sent. */
function isExecution(value: unknown): value is JobExecution {
  const e = value as Partial<JobExecution> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.jobId === 'string' &&
    isValidJobId(e.jobId) &&
    Number.isInteger(e.executionNumber) &&
    Number.isInteger(e.versionNumber)
  );
}

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

/** Where a resumed step document picks up, from the `step` the previous agent reported before it stopped. */
function resumePoint(
  doc: Extract<JobDocument, { kind: 'steps' }>,
  details: StatusDetails | undefined,
): { startAt: number } | { reason: string } {
  const actions = [...doc.steps, ...(doc.finalStep ? [doc.finalStep] : [])];
  const step = Number(details?.step);
  const action = actions[step - 1];
  if (!Number.isInteger(step) || action === undefined) return { startAt: 0 };
  if (action.onRestart === 'continue') return { startAt: step };
  if (action.onRestart === 'rerun') return { startAt: step - 1 };
  return {
    reason:
      `the agent restarted while step ${step}/${actions.length} "${action.name}" was running, so its ` +
      'outcome is unknown; set onRestart to continue or rerun on steps that may be resumed',
  };
}

/**
 * The device agent (SPEC 7): one persistent MQTT session per thing, one job at a time. It asks start-next at
 * connect and after each job, runs what it gets, reports progress and the outcome through update with
 * expectedVersion, notices cancellation through notify / notify-next, and never leaves an execution
 * IN_PROGRESS behind on purpose.
 */
export function createAgent(options: AgentOptions): Agent {
  if (!isValidThingName(options.thingName)) {
    throw new Error(`thing name ${options.thingName} must match [a-zA-Z0-9:_-]{1,128}`);
  }
  const thing = options.thingName;
  const topics = createTopicScheme(options.topicRoot);
  const log = options.logger ?? silent;
  const handlers = options.handlers ?? {};
  const operations = new Set(Object.keys(handlers));
  const stepTimeoutSeconds = options.stepTimeoutSeconds ?? 3600;
  const killGraceMs = options.killGraceMs ?? 5000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const reconnectBackoff = createBackoff(options.reconnect);
  const retryBackoff = createBackoff({ initialMs: 500, maxMs: 30_000 });
  const emitter = new EventEmitter();
  emitter.on('error', () => {});
  const pending = new Map<
    string,
    { resolve: (reply: Reply<unknown>) => void; reject: (err: Error) => void }
  >();
  const finished = new RecentMap<{ status: JobDoneEvent['status']; statusDetails: StatusDetails }>(200);
  const closing = new AbortController();
  let client: MqttClient | undefined;
  let running: Running | undefined;
  let runningDone: Promise<boolean> = Promise.resolve(true);
  let pumping = false;
  let wanted = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let connectedWaiters: Array<() => void> = [];
  /** Connected and subscribed: a reply to a request sent now cannot be missed. */
  let ready = false;

  const emit = <E extends keyof AgentEvents>(event: E, ...args: AgentEvents[E]) =>
    emitter.emit(event, ...args);

  function waitConnected(): Promise<void> {
    if (closing.signal.aborted) return Promise.reject(new AgentClosed('the agent is stopped'));
    if (ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onClose = () => reject(new AgentClosed('the agent is stopped'));
      closing.signal.addEventListener('abort', onClose, { once: true });
      connectedWaiters.push(() => {
        closing.signal.removeEventListener('abort', onClose);
        resolve();
      });
    });
  }

  async function request<T>(topic: string, payload: Record<string, unknown>): Promise<Reply<T>> {
    await waitConnected();
    const clientToken = token();
    return new Promise<Reply<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(clientToken);
        reject(new RequestTimeout(`no reply on ${topic} within ${requestTimeoutMs} ms`));
      }, requestTimeoutMs);
      pending.set(clientToken, {
        resolve: (reply) => {
          clearTimeout(timer);
          pending.delete(clientToken);
          resolve(reply as Reply<T>);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      client?.publish(topic, JSON.stringify({ ...payload, clientToken }), { qos: 1 }, (err) => {
        if (err) log.debug({ err: err.message, topic }, 'publish not sent yet');
      });
    });
  }

  function onMessage(topic: string, payload: Buffer): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      log.warn({ topic }, 'ignored a message that is not JSON');
      return;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
    if (topic.endsWith('/accepted') || topic.endsWith('/rejected')) {
      const clientToken = (body as { clientToken?: unknown }).clientToken;
      const waiter = typeof clientToken === 'string' ? pending.get(clientToken) : undefined;
      waiter?.resolve({ accepted: topic.endsWith('/accepted'), body } as Reply<unknown>);
      return;
    }
    if (topic === topics.notifyNext(thing)) onNotifyNext(body as NotifyNextEvent);
    else if (topic === topics.notify(thing)) onNotify(body as NotifyEvent);
  }

  function onNotifyNext(event: NotifyNextEvent): void {
    const job = running;
    const next = event.execution;
    if (job === undefined) {
      if (next) kick();
      return;
    }
    // While a job runs it is IN_PROGRESS, so it heads the queue; another head means it left the pending set.
    if (next?.jobId !== job.jobId || next.executionNumber !== job.executionNumber) void verify(job);
  }

  function onNotify(event: NotifyEvent): void {
    const job = running;
    if (job === undefined) {
      if (Array.isArray(event.jobs?.QUEUED) && event.jobs.QUEUED.length > 0) kick();
      return;
    }
    const list = (value: unknown) => (Array.isArray(value) ? (value as Array<Partial<JobExecution>>) : []);
    const listed = [...list(event.jobs?.IN_PROGRESS), ...list(event.jobs?.QUEUED)];
    // The lists hold at most 10 entries, so absence from a full list proves nothing.
    if (listed.length >= LIMITS.MAX_PENDING_LIST) return;
    const present = listed.some((e) => e?.jobId === job.jobId && e.executionNumber === job.executionNumber);
    if (!present) void verify(job);
  }

  function markGone(job: Running, reason: string): void {
    if (job.gone !== undefined) return;
    job.gone = reason;
    log.info(
      { jobId: job.jobId, executionNumber: job.executionNumber, reason },
      'execution ended by the service',
    );
    job.controller.abort(new Error(reason));
  }

  /** Asks the service whether the running execution is still pending; ends it here if it is not. */
  async function verify(job: Running): Promise<void> {
    if (job.verifying || job.final || job.gone !== undefined) return;
    job.verifying = true;
    try {
      const reply = await request<ExecutionAccepted>(
        topics.request(thing, 'DescribeJobExecution', job.jobId),
        { executionNumber: job.executionNumber, includeJobDocument: false },
      );
      if (reply.accepted) {
        const status = reply.body.execution?.status;
        if (status === undefined || isTerminal(status)) markGone(job, `the execution is ${status ?? 'gone'}`);
      } else if (GONE_CODES.has(reply.body.code)) {
        markGone(job, `the execution is gone (${reply.body.code})`);
      }
    } catch (err) {
      log.debug({ err: errorMessage(err) }, 'could not check the running execution');
    } finally {
      job.verifying = false;
    }
  }

  /**
   * One UpdateJobExecution, retried until the service answers for good. 'gone' when the execution was
   * canceled, removed or timed out in the meantime.
   */
  async function update(
    job: Running,
    status: string,
    statusDetails: StatusDetails,
    stepTimeoutInMinutes?: number,
  ): Promise<'ok' | 'gone'> {
    let detailsDropped = false;
    for (;;) {
      if (job.gone !== undefined) return 'gone';
      let reply: Reply<UpdateAccepted>;
      try {
        reply = await request<UpdateAccepted>(topics.request(thing, 'UpdateJobExecution', job.jobId), {
          status,
          statusDetails,
          expectedVersion: job.version,
          executionNumber: job.executionNumber,
          includeJobExecutionState: true,
          ...(stepTimeoutInMinutes === undefined ? {} : { stepTimeoutInMinutes }),
        });
      } catch (err) {
        if (err instanceof AgentClosed) throw err;
        log.warn({ jobId: job.jobId, err: errorMessage(err) }, 'update not answered; asking again');
        continue;
      }
      if (reply.accepted) {
        job.version = reply.body.executionState?.versionNumber ?? job.version + 1;
        retryBackoff.reset();
        return 'ok';
      }
      const { code, message } = reply.body;
      const state: JobExecutionState | undefined = reply.body.executionState;
      // A retry of an update that did arrive: the service already holds what we asked for.
      if (state && state.status === status && isTerminal(state.status)) return 'ok';
      if (state && isExecutionStatus(state.status) && isTerminal(state.status)) {
        markGone(job, `the execution is ${state.status}`);
        return 'gone';
      }
      if (code === 'VersionMismatch' && state) {
        job.version = state.versionNumber;
        continue;
      }
      if (GONE_CODES.has(code) || code === 'InvalidStateTransition') {
        markGone(job, `the service refused the update (${code})`);
        return 'gone';
      }
      if (RETRY_CODES.has(code)) {
        await delay(retryBackoff.next(), closing.signal);
        continue;
      }
      log.error({ jobId: job.jobId, code, message, statusDetails }, 'update rejected');
      if (!detailsDropped) {
        // Never lose the outcome over its details: try once more with nothing but the refusal as reason.
        detailsDropped = true;
        statusDetails = toStatusDetails({ reason: `the service refused the details: ${message}` });
        continue;
      }
      throw new Error(`update to ${status} rejected: ${code} ${message}`);
    }
  }

  function enqueue(job: Running, fn: () => Promise<'ok' | 'gone'>): Promise<'ok' | 'gone'> {
    const next = job.queue.then(fn, fn);
    job.queue = next.catch(() => undefined);
    return next;
  }

  async function progress(job: Running, details: StatusDetails, stepSeconds: number): Promise<void> {
    const result = await enqueue(job, () => update(job, 'IN_PROGRESS', details, minutesFor(stepSeconds)));
    if (result === 'gone') throw new Error(job.gone);
  }

  async function finish(job: Running, status: JobDoneEvent['status'], statusDetails: StatusDetails) {
    job.final = true;
    // The outcome is decided: should the service hand this execution out again, it is reported, never rerun.
    finished.set(`${job.jobId}#${job.executionNumber}`, { status, statusDetails });
    const result = await enqueue(job, () => update(job, status, statusDetails));
    if (result === 'gone') {
      emit('job:canceled', {
        jobId: job.jobId,
        executionNumber: job.executionNumber,
        reason: job.gone ?? '',
      });
      return;
    }
    log.info({ jobId: job.jobId, executionNumber: job.executionNumber, status }, 'job finished');
    emit('job:done', { jobId: job.jobId, executionNumber: job.executionNumber, status, statusDetails });
  }

  async function runOperation(job: Running, name: string, ctx: JobContext): Promise<Outcome> {
    const handler = handlers[name] as JobHandler;
    const timeout = AbortSignal.timeout(stepTimeoutSeconds * 1000);
    const signal = AbortSignal.any([job.controller.signal, timeout]);
    // A handler that ignores its signal gets killGraceMs to return, then the agent moves on without it.
    const abandoned = new Promise<'abandoned'>((resolve) =>
      signal.addEventListener('abort', () => setTimeout(() => resolve('abandoned'), killGraceMs).unref(), {
        once: true,
      }),
    );
    try {
      const result = await Promise.race([handler({ ...ctx, signal }), abandoned]);
      if (signal.aborted) throw signal.reason;
      return {
        status: 'SUCCEEDED',
        statusDetails: toStatusDetails(result === 'abandoned' ? {} : (result ?? {})),
      };
    } catch (err) {
      const reason = timeout.aborted
        ? `operation ${name} timed out after ${stepTimeoutSeconds} s`
        : `operation ${name} failed: ${errorMessage(err)}`;
      return { status: 'FAILED', statusDetails: toStatusDetails({ reason }) };
    }
  }

  /** Runs one execution to its end; false when it could not be finished (the caller backs off). */
  async function runExecution(execution: JobExecution, startToken: string): Promise<boolean> {
    const { jobId, executionNumber } = execution;
    const job: Running = {
      jobId,
      executionNumber,
      version: execution.versionNumber,
      controller: new AbortController(),
      queue: Promise.resolve(),
    };
    const previous = finished.get(`${jobId}#${executionNumber}`);
    running = job;
    try {
      if (previous) {
        // A duplicate delivery of an execution already run here: report its outcome again, never rerun it.
        log.info({ jobId, executionNumber }, 'reporting a finished execution again');
        job.final = true;
        await enqueue(job, () => update(job, previous.status, previous.statusDetails));
        return true;
      }
      const resume = execution.status === 'IN_PROGRESS' && execution.statusDetails?.agentStart !== startToken;
      log.info({ jobId, executionNumber, resume }, 'job started');
      emit('job:start', { jobId, executionNumber, resume });
      let doc: JobDocument;
      try {
        doc = parseJobDocument(execution.jobDocument, operations);
        checkRunAsUsers(doc, options.runAsUsers);
      } catch (err) {
        if (!(err instanceof InvalidDocumentError)) throw err;
        await finish(job, 'REJECTED', toStatusDetails({ reason: `invalid job document: ${err.message}` }));
        return true;
      }
      let outcome: Outcome;
      if (doc.kind === 'operation') {
        outcome = await runOperation(job, doc.operation, {
          jobId,
          executionNumber,
          thingName: thing,
          document: execution.jobDocument as Record<string, unknown>,
          signal: job.controller.signal,
          resume,
          statusDetails: execution.statusDetails ?? {},
          progress: ({ step, percent, details }) =>
            progress(job, toStatusDetails({ ...details, step, percent }), stepTimeoutSeconds),
        });
      } else {
        const point = resume ? resumePoint(doc, execution.statusDetails) : { startAt: 0 };
        if ('reason' in point) {
          await finish(job, 'FAILED', toStatusDetails({ reason: point.reason }));
          return true;
        }
        outcome = await runSteps(doc, {
          ...(options.handlerDir === undefined ? {} : { handlerDir: options.handlerDir }),
          ...(options.runAsUsers === undefined ? {} : { runAsUsers: options.runAsUsers }),
          defaultStepTimeoutSeconds: stepTimeoutSeconds,
          killGraceMs,
          signal: job.controller.signal,
          startAt: point.startAt,
          beforeStep: (index: number, action: Action) =>
            progress(
              job,
              toStatusDetails({ step: index + 1, stepName: action.name }),
              action.timeoutSeconds ?? stepTimeoutSeconds,
            ),
          onSpawn: (index, action, pid) =>
            emit('step', { jobId, executionNumber, index, name: action.name, pid }),
        });
      }
      if (job.gone !== undefined) {
        emit('job:canceled', { jobId, executionNumber, reason: job.gone });
        return true;
      }
      if (job.stopping) {
        outcome.statusDetails = toStatusDetails({
          ...outcome.statusDetails,
          reason: `the agent was stopped: ${outcome.statusDetails.reason ?? 'the job did not finish'}`,
        });
      }
      await finish(job, outcome.status, outcome.statusDetails);
      return true;
    } catch (err) {
      if (job.gone !== undefined) emit('job:canceled', { jobId, executionNumber, reason: job.gone });
      else if (!(err instanceof AgentClosed)) {
        log.error({ jobId, err: errorMessage(err) }, 'job could not be run');
        emit('error', err instanceof Error ? err : new Error(String(err)));
        return false;
      }
      return true;
    } finally {
      running = undefined;
    }
  }

  async function startNext(): Promise<{ execution?: JobExecution; startToken: string }> {
    const startToken = token();
    const reply = await request<ExecutionAccepted>(topics.request(thing, 'StartNextPendingJobExecution'), {
      // start-next sets these on a QUEUED execution only, which tells a fresh start from a resume.
      statusDetails: { agentStart: startToken },
      stepTimeoutInMinutes: minutesFor(stepTimeoutSeconds),
    });
    if (!reply.accepted) throw new Error(`start-next rejected: ${reply.body.code} ${reply.body.message}`);
    return { ...(reply.body.execution ? { execution: reply.body.execution } : {}), startToken };
  }

  function kick(): void {
    wanted = true;
    if (!pumping && !closing.signal.aborted) void pump();
  }

  async function pump(): Promise<void> {
    pumping = true;
    try {
      while (wanted && !stopped() && ready) {
        wanted = false;
        let next: Awaited<ReturnType<typeof startNext>>;
        try {
          next = await startNext();
          retryBackoff.reset();
        } catch (err) {
          if (err instanceof AgentClosed) return;
          log.warn({ err: errorMessage(err) }, 'start-next failed; retrying');
          clearTimeout(retryTimer);
          retryTimer = setTimeout(kick, retryBackoff.next());
          return;
        }
        if (next.execution && !isExecution(next.execution)) {
          log.error({ execution: next.execution }, 'start-next returned a malformed execution');
          clearTimeout(retryTimer);
          retryTimer = setTimeout(kick, retryBackoff.next());
          return;
        }
        if (next.execution && !stopped()) {
          runningDone = runExecution(next.execution, next.startToken);
          if (!(await runningDone)) {
            clearTimeout(retryTimer);
            retryTimer = setTimeout(kick, retryBackoff.next());
            return;
          }
          wanted = true;
        }
      }
    } finally {
      pumping = false;
    }
  }

  let stopRequested = false;
  const stopped = () => stopRequested || closing.signal.aborted;

  return {
    get connected() {
      return ready;
    },
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return () => emitter.off(event, listener as (...args: unknown[]) => void);
    },
    start() {
      const creds = options.credentials ?? {};
      const mqttOptions: IClientOptions = {
        clientId: options.clientId ?? thing,
        clean: false,
        protocolVersion: 4,
        keepalive: 30,
        connectTimeout: 10_000,
        reconnectPeriod: reconnectBackoff.next(),
        ...(creds.token !== undefined ? { username: creds.username ?? thing, password: creds.token } : {}),
        ...(creds.username !== undefined && creds.token === undefined ? { username: creds.username } : {}),
        ...(creds.password !== undefined ? { password: creds.password } : {}),
        ...(creds.cert !== undefined ? { cert: creds.cert } : {}),
        ...(creds.key !== undefined ? { key: creds.key } : {}),
        ...(creds.ca !== undefined ? { ca: creds.ca } : {}),
      };
      reconnectBackoff.reset();
      const c = connect(options.url, mqttOptions);
      client = c;
      // Runs before MQTT.js arms its reconnect timer, so each attempt waits the next back-off delay.
      c.prependListener('close', () => {
        ready = false;
        c.options.reconnectPeriod = reconnectBackoff.next();
      });
      c.on('message', onMessage);
      c.on('offline', () => {
        log.warn({ url: options.url }, 'disconnected; reconnecting');
        emit('offline');
      });
      c.on('error', (err) => {
        log.warn({ err: err.message }, 'mqtt error');
        emit('error', err);
      });
      c.on('connect', () => {
        // Request and reply are small packets: without this, Nagle and delayed ACKs add ~40 ms to each.
        (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
        reconnectBackoff.reset();
        log.info({ url: options.url, thingName: thing }, 'connected');
        const filters = [
          topics.notifyNext(thing),
          topics.notify(thing),
          `${topics.root(thing)}/start-next/+`,
          `${topics.root(thing)}/+/get/+`,
          `${topics.root(thing)}/+/update/+`,
        ];
        c.subscribe(filters, { qos: 1 }, (err) => {
          if (err) log.warn({ err: err.message }, 'subscribe failed');
          if (!c.connected) return;
          ready = true;
          const waiters = connectedWaiters;
          connectedWaiters = [];
          for (const w of waiters) w();
          emit('connect');
          // No state is pushed on connect: ask for the next job (this also resumes one left IN_PROGRESS).
          kick();
        });
      });
      return new Promise<void>((resolve) => {
        const done = () => {
          c.off('connect', done);
          closing.signal.removeEventListener('abort', done);
          resolve();
        };
        c.on('connect', done);
        closing.signal.addEventListener('abort', done);
      });
    },
    async stop(stopOptions = {}) {
      stopRequested = true;
      clearTimeout(retryTimer);
      const job = running;
      if (job) {
        const timeoutMs = stopOptions.timeoutMs ?? 10_000;
        if (!(await settlesWithin(runningDone, timeoutMs))) {
          job.stopping = true;
          job.controller.abort(new Error('the agent is stopping'));
          await settlesWithin(runningDone, killGraceMs + requestTimeoutMs * 2);
        }
      }
      closing.abort();
      for (const waiter of pending.values()) waiter.reject(new AgentClosed('the agent is stopped'));
      pending.clear();
      await client?.endAsync(false);
    },
  };
}
