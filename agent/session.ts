import { randomBytes } from 'node:crypto';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { TopicScheme } from '../src/protocol/topics.js';
import type { NotifyEvent, NotifyNextEvent, RejectedReply } from '../src/protocol/messages.js';
import type { Backoff } from './backoff.js';
import type { AgentCredentials, AgentLogger } from './types.js';

export type Reply<T> = { accepted: true; body: T } | { accepted: false; body: RejectedReply };

export class RequestTimeout extends Error {}
export class AgentClosed extends Error {}

export function token(): string {
  return randomBytes(8).toString('hex');
}

export interface SessionOptions {
  url: string;
  thingName: string;
  clientId?: string;
  credentials?: AgentCredentials;
  topics: TopicScheme;
  log: AgentLogger;
  /** How long to wait for a reply before a request rejects with RequestTimeout. */
  requestTimeoutMs: number;
  reconnect: Backoff;
  /** Connected and subscribed, after each (re)connect: a reply to a request sent now cannot be missed. */
  onReady(): void;
  onOffline(): void;
  onError(err: Error): void;
  onNotify(event: NotifyEvent): void;
  onNotifyNext(event: NotifyNextEvent): void;
}

export interface Session {
  /** Connected and subscribed. */
  readonly ready: boolean;
  /** Aborted by close(). */
  readonly closed: AbortSignal;
  /** Connects (and keeps reconnecting); resolves at the first connect, or at close(). */
  start(): Promise<void>;
  /**
   * Publishes a request with a clientToken of its own and resolves with the accepted or rejected reply that
   * carries it back. Waits for the session to be ready first; rejects with RequestTimeout when no reply came
   * within requestTimeoutMs, and with AgentClosed once the session is closed.
   */
  request<T>(topic: string, payload: Record<string, unknown>): Promise<Reply<T>>;
  /** Fails the requests in flight with AgentClosed and disconnects. */
  close(): Promise<void>;
}

/** The agent's persistent MQTT session (clean: false) with request / reply correlated by clientToken. */
export function createSession(options: SessionOptions): Session {
  const { topics, log, thingName: thing } = options;
  const closing = new AbortController();
  const pending = new Map<
    string,
    { resolve: (reply: Reply<unknown>) => void; reject: (err: Error) => void }
  >();
  let client: MqttClient | undefined;
  let ready = false;
  let readyWaiters: Array<() => void> = [];

  function waitReady(): Promise<void> {
    if (closing.signal.aborted) return Promise.reject(new AgentClosed('the agent is stopped'));
    if (ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onClose = () => reject(new AgentClosed('the agent is stopped'));
      closing.signal.addEventListener('abort', onClose, { once: true });
      readyWaiters.push(() => {
        closing.signal.removeEventListener('abort', onClose);
        resolve();
      });
    });
  }

  async function request<T>(topic: string, payload: Record<string, unknown>): Promise<Reply<T>> {
    await waitReady();
    const clientToken = token();
    return new Promise<Reply<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(clientToken);
        reject(new RequestTimeout(`no reply on ${topic} within ${options.requestTimeoutMs} ms`));
      }, options.requestTimeoutMs);
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
    if (topic === topics.notifyNext(thing)) options.onNotifyNext(body as NotifyNextEvent);
    else if (topic === topics.notify(thing)) options.onNotify(body as NotifyEvent);
  }

  return {
    get ready() {
      return ready;
    },
    closed: closing.signal,
    request,
    start() {
      const creds = options.credentials ?? {};
      const reconnect = options.reconnect;
      const mqttOptions: IClientOptions = {
        clientId: options.clientId ?? thing,
        clean: false,
        protocolVersion: 4,
        keepalive: 30,
        connectTimeout: 10_000,
        reconnectPeriod: reconnect.next(),
        ...(creds.token !== undefined ? { username: creds.username ?? thing, password: creds.token } : {}),
        ...(creds.username !== undefined && creds.token === undefined ? { username: creds.username } : {}),
        ...(creds.password !== undefined ? { password: creds.password } : {}),
        ...(creds.cert !== undefined ? { cert: creds.cert } : {}),
        ...(creds.key !== undefined ? { key: creds.key } : {}),
        ...(creds.ca !== undefined ? { ca: creds.ca } : {}),
      };
      reconnect.reset();
      const c = connect(options.url, mqttOptions);
      client = c;
      // Runs before MQTT.js arms its reconnect timer, so each attempt waits the next back-off delay.
      c.prependListener('close', () => {
        ready = false;
        c.options.reconnectPeriod = reconnect.next();
      });
      c.on('message', onMessage);
      c.on('offline', () => {
        log.warn({ url: options.url }, 'disconnected; reconnecting');
        options.onOffline();
      });
      c.on('error', (err) => {
        log.warn({ err: err.message }, 'mqtt error');
        options.onError(err);
      });
      c.on('connect', () => {
        // Request and reply are small packets: without this, Nagle and delayed ACKs add ~40 ms to each.
        (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
        reconnect.reset();
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
          const waiters = readyWaiters;
          readyWaiters = [];
          for (const w of waiters) w();
          options.onReady();
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
    async close() {
      closing.abort();
      for (const waiter of pending.values()) waiter.reject(new AgentClosed('the agent is stopped'));
      pending.clear();
      await client?.endAsync(false);
    },
  };
}
