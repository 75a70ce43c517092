import type { StatusDetails } from '../src/protocol/messages.js';
import type { BackoffOptions } from './backoff.js';

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
