import { LIMITS, isValidJobId } from '../src/protocol/limits.js';
import type { TopicScheme } from '../src/protocol/topics.js';
import { isExecutionStatus, isTerminal } from '../src/protocol/states.js';
import type {
  ExecutionAccepted,
  JobExecution,
  JobExecutionState,
  StatusDetails,
  UpdateAccepted,
} from '../src/protocol/messages.js';
import { RecentMap, type Backoff } from './backoff.js';
import { InvalidDocumentError, parseJobDocument, type Action, type JobDocument } from './document.js';
import { checkRunAsUsers, runSteps, toStatusDetails, type Outcome } from './runner.js';
import { AgentClosed, type Reply, type Session } from './session.js';
import type { AgentEvents, AgentLogger, JobContext, JobDoneEvent, JobHandler } from './types.js';

/**
 * Where the execution being run stands. It starts `running`; `stopping` when the agent is stopping and the job
 * did not end in time (its outcome then says so); `reporting` once the outcome is decided and being sent (no
 * more checks with the service); `gone` from any of them when the service no longer has it pending
 * (canceled, removed, timed out): nothing more is reported and the work is aborted.
 */
export type JobState =
  { phase: 'running' } | { phase: 'stopping' } | { phase: 'reporting' } | { phase: 'gone'; reason: string };

export interface RunningJob {
  readonly jobId: string;
  readonly executionNumber: number;
  state: JobState;
  /** The versionNumber the next update expects. */
  version: number;
  /** Aborted when the job is gone or the agent stops it. */
  readonly controller: AbortController;
  /** Updates are sent one at a time: each carries the version the previous one produced. */
  queue: Promise<unknown>;
  /** The DescribeJobExecution in flight that checks whether the job is still pending. */
  checking?: Promise<void>;
}

export interface JobRunnerOptions {
  thingName: string;
  topics: TopicScheme;
  session: Pick<Session, 'request' | 'closed'>;
  log: AgentLogger;
  emit<E extends keyof AgentEvents>(event: E, ...args: AgentEvents[E]): void;
  handlers: Record<string, JobHandler>;
  handlerDir?: string;
  runAsUsers?: string[];
  stepTimeoutSeconds: number;
  killGraceMs: number;
  /** Waits between updates the service throttled or failed. */
  updateRetry: Backoff;
}

export interface JobRunner {
  /** The execution being run, if any. */
  readonly current: RunningJob | undefined;
  /** Runs one execution to its end; false when it could not be finished (the caller backs off). */
  run(execution: JobExecution, startToken: string): Promise<boolean>;
  /** Asks the service whether the running execution is still pending; ends it here if it is not. */
  verify(job: RunningJob): Promise<void>;
  /** The agent is stopping: aborts the running job, whose outcome is then reported as stopped. */
  interrupt(job: RunningJob): void;
}

const GONE_CODES = new Set(['ResourceNotFound', 'TerminalStateReached']);
const RETRY_CODES = new Set(['InternalError', 'RequestThrottled']);

export function minutesFor(seconds: number): number {
  // The service's step timer backs up the agent's own: it fires a minute after the agent should have acted.
  return Math.min(LIMITS.MAX_TIMEOUT_MINUTES, Math.ceil(seconds / 60) + 1);
}

export function errorMessage(err: unknown): string {
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
export function isExecution(value: unknown): value is JobExecution {
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

const goneReason = (job: RunningJob): string | undefined =>
  job.state.phase === 'gone' ? job.state.reason : undefined;

/**
 * Runs the executions the agent is handed, one at a time: the job document's steps or handler function,
 * progress and the outcome through UpdateJobExecution with expectedVersion, and the end of an execution the
 * service canceled, removed or timed out in the meantime.
 */
export function createJobRunner(options: JobRunnerOptions): JobRunner {
  const { thingName: thing, topics, session, log, emit, handlers, stepTimeoutSeconds, killGraceMs } = options;
  const operations = new Set(Object.keys(handlers));
  const finished = new RecentMap<{ status: JobDoneEvent['status']; statusDetails: StatusDetails }>(200);
  let current: RunningJob | undefined;

  function markGone(job: RunningJob, reason: string): void {
    if (job.state.phase === 'gone') return;
    job.state = { phase: 'gone', reason };
    log.info(
      { jobId: job.jobId, executionNumber: job.executionNumber, reason },
      'execution ended by the service',
    );
    job.controller.abort(new Error(reason));
  }

  function verify(job: RunningJob): Promise<void> {
    if (job.checking || job.state.phase === 'reporting' || job.state.phase === 'gone')
      return Promise.resolve();
    job.checking = (async () => {
      try {
        const reply = await session.request<ExecutionAccepted>(
          topics.request(thing, 'DescribeJobExecution', job.jobId),
          { executionNumber: job.executionNumber, includeJobDocument: false },
        );
        if (reply.accepted) {
          const status = reply.body.execution?.status;
          if (status === undefined || isTerminal(status))
            markGone(job, `the execution is ${status ?? 'gone'}`);
        } else if (GONE_CODES.has(reply.body.code)) {
          markGone(job, `the execution is gone (${reply.body.code})`);
        }
      } catch (err) {
        log.debug({ err: errorMessage(err) }, 'could not check the running execution');
      } finally {
        job.checking = undefined;
      }
    })();
    return job.checking;
  }

  /**
   * One UpdateJobExecution, retried until the service answers for good. 'gone' when the execution was
   * canceled, removed or timed out in the meantime.
   */
  async function update(
    job: RunningJob,
    status: string,
    statusDetails: StatusDetails,
    stepTimeoutInMinutes?: number,
  ): Promise<'ok' | 'gone'> {
    let detailsDropped = false;
    for (;;) {
      if (job.state.phase === 'gone') return 'gone';
      let reply: Reply<UpdateAccepted>;
      try {
        reply = await session.request<UpdateAccepted>(
          topics.request(thing, 'UpdateJobExecution', job.jobId),
          {
            status,
            statusDetails,
            expectedVersion: job.version,
            executionNumber: job.executionNumber,
            includeJobExecutionState: true,
            ...(stepTimeoutInMinutes === undefined ? {} : { stepTimeoutInMinutes }),
          },
        );
      } catch (err) {
        if (err instanceof AgentClosed) throw err;
        log.warn({ jobId: job.jobId, err: errorMessage(err) }, 'update not answered; asking again');
        continue;
      }
      if (reply.accepted) {
        job.version = reply.body.executionState?.versionNumber ?? job.version + 1;
        options.updateRetry.reset();
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
        await delay(options.updateRetry.next(), session.closed);
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

  function enqueue(job: RunningJob, fn: () => Promise<'ok' | 'gone'>): Promise<'ok' | 'gone'> {
    const next = job.queue.then(fn, fn);
    job.queue = next.catch(() => undefined);
    return next;
  }

  async function progress(job: RunningJob, details: StatusDetails, stepSeconds: number): Promise<void> {
    const result = await enqueue(job, () => update(job, 'IN_PROGRESS', details, minutesFor(stepSeconds)));
    if (result === 'gone') throw new Error(goneReason(job));
  }

  /** The outcome is decided: no more checks, and nothing but the service's end of the execution stops it. */
  function decide(job: RunningJob): void {
    if (job.state.phase !== 'gone') job.state = { phase: 'reporting' };
  }

  async function finish(job: RunningJob, status: JobDoneEvent['status'], statusDetails: StatusDetails) {
    decide(job);
    // Should the service hand this execution out again, its outcome is reported, never rerun.
    finished.set(`${job.jobId}#${job.executionNumber}`, { status, statusDetails });
    const result = await enqueue(job, () => update(job, status, statusDetails));
    if (result === 'gone') {
      emit('job:canceled', {
        jobId: job.jobId,
        executionNumber: job.executionNumber,
        reason: goneReason(job) ?? '',
      });
      return;
    }
    log.info({ jobId: job.jobId, executionNumber: job.executionNumber, status }, 'job finished');
    emit('job:done', { jobId: job.jobId, executionNumber: job.executionNumber, status, statusDetails });
  }

  async function runOperation(job: RunningJob, name: string, ctx: JobContext): Promise<Outcome> {
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

  /** Runs the document of a started execution; undefined when it was already reported (rejected, not resumable). */
  async function runDocument(
    job: RunningJob,
    execution: JobExecution,
    resume: boolean,
  ): Promise<Outcome | undefined> {
    const { jobId, executionNumber } = job;
    let doc: JobDocument;
    try {
      doc = parseJobDocument(execution.jobDocument, operations);
      checkRunAsUsers(doc, options.runAsUsers);
    } catch (err) {
      if (!(err instanceof InvalidDocumentError)) throw err;
      await finish(job, 'REJECTED', toStatusDetails({ reason: `invalid job document: ${err.message}` }));
      return undefined;
    }
    if (doc.kind === 'operation') {
      return runOperation(job, doc.operation, {
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
    }
    const point = resume ? resumePoint(doc, execution.statusDetails) : { startAt: 0 };
    if ('reason' in point) {
      await finish(job, 'FAILED', toStatusDetails({ reason: point.reason }));
      return undefined;
    }
    return runSteps(doc, {
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

  async function run(execution: JobExecution, startToken: string): Promise<boolean> {
    const { jobId, executionNumber } = execution;
    const job: RunningJob = {
      jobId,
      executionNumber,
      state: { phase: 'running' },
      version: execution.versionNumber,
      controller: new AbortController(),
      queue: Promise.resolve(),
    };
    const previous = finished.get(`${jobId}#${executionNumber}`);
    current = job;
    try {
      if (previous) {
        // A duplicate delivery of an execution already run here: report its outcome again, never rerun it.
        log.info({ jobId, executionNumber }, 'reporting a finished execution again');
        decide(job);
        await enqueue(job, () => update(job, previous.status, previous.statusDetails));
        return true;
      }
      const resume = execution.status === 'IN_PROGRESS' && execution.statusDetails?.agentStart !== startToken;
      log.info({ jobId, executionNumber, resume }, 'job started');
      emit('job:start', { jobId, executionNumber, resume });
      const outcome = await runDocument(job, execution, resume);
      if (outcome === undefined) return true;
      const now = job.state;
      if (now.phase === 'gone') {
        emit('job:canceled', { jobId, executionNumber, reason: now.reason });
        return true;
      }
      if (now.phase === 'stopping') {
        outcome.statusDetails = toStatusDetails({
          ...outcome.statusDetails,
          reason: `the agent was stopped: ${outcome.statusDetails.reason ?? 'the job did not finish'}`,
        });
      }
      await finish(job, outcome.status, outcome.statusDetails);
      return true;
    } catch (err) {
      const reason = goneReason(job);
      if (reason !== undefined) emit('job:canceled', { jobId, executionNumber, reason });
      else if (!(err instanceof AgentClosed)) {
        log.error({ jobId, err: errorMessage(err) }, 'job could not be run');
        emit('error', err instanceof Error ? err : new Error(String(err)));
        return false;
      }
      return true;
    } finally {
      current = undefined;
    }
  }

  return {
    get current() {
      return current;
    },
    run,
    verify,
    interrupt(job) {
      if (job.state.phase === 'running') job.state = { phase: 'stopping' };
      job.controller.abort(new Error('the agent is stopping'));
    },
  };
}
