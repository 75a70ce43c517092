import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { DEFAULT_TOPIC_ROOT } from '../protocol/topics.js';

/** A message a test device received, with its payload parsed as JSON when it is JSON. */
export interface DeviceMessage {
  topic: string;
  payload: Buffer;
  json: unknown;
}

/** The reply to a device request: `accepted` or `rejected`, and its JSON body. */
export interface DeviceReply {
  outcome: 'accepted' | 'rejected';
  topic: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface TestDeviceOptions {
  /** mqtt://host:port of the broker devices connect to. */
  url: string;
  thingName: string;
  /** The thing's secret (AUTH_MODE=required); the username is the thing name. */
  password?: string;
  /** JOBS_TOPIC_ROOT of the server (default `$aws/things/{thingName}/jobs`). */
  topicRoot?: string;
  /** How long request() and nextMessage() wait (default 5000 ms). */
  timeoutMs?: number;
  /** Extra MQTT.js options (protocolVersion, keepalive...). */
  mqtt?: IClientOptions;
}

/**
 * A connected MQTT device, subscribed to its jobs topics (`notify`, `notify-next` and every reply), with request
 * helpers that publish an AWS IoT Jobs request and resolve with its reply.
 */
export interface TestDevice {
  readonly thingName: string;
  readonly client: MqttClient;
  /** This thing's jobs topic root, e.g. `$aws/things/sensor-1/jobs`. */
  readonly root: string;
  /** Every message received since connect, in order. */
  readonly messages: readonly DeviceMessage[];
  /** Publishes `{root}/{operation}` with a clientToken and resolves with the matching accepted/rejected reply. */
  request(operation: string, payload?: Record<string, unknown>): Promise<DeviceReply>;
  getPending(): Promise<DeviceReply>;
  startNext(payload?: Record<string, unknown>): Promise<DeviceReply>;
  describe(jobId?: string, payload?: Record<string, unknown>): Promise<DeviceReply>;
  update(jobId: string, payload: Record<string, unknown>): Promise<DeviceReply>;
  /**
   * Resolves with the next message on `{root}/{suffix}` (`notify-next`, `notify`) that satisfies the predicate,
   * including one that already arrived and was not yet taken by an earlier call.
   */
  nextMessage(suffix: string, predicate?: (m: DeviceMessage) => boolean): Promise<DeviceMessage>;
  close(): Promise<void>;
}

function parse(topic: string, payload: Buffer): DeviceMessage {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { topic, payload, json };
}

function tokenOf(m: DeviceMessage): unknown {
  return typeof m.json === 'object' && m.json !== null
    ? (m.json as { clientToken?: unknown }).clientToken
    : undefined;
}

/** Connects a device (MQTT 3.1.1, client id = thing name, no reconnect) and subscribes to its jobs topics. */
export async function connectTestDevice(options: TestDeviceOptions): Promise<TestDevice> {
  const { thingName } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const root = (options.topicRoot ?? DEFAULT_TOPIC_ROOT).replace('{thingName}', thingName);
  const client = await mqtt.connectAsync(options.url, {
    protocolVersion: 4,
    clientId: thingName,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    ...(options.password === undefined ? {} : { username: thingName, password: options.password }),
    ...options.mqtt,
  });
  const messages: DeviceMessage[] = [];
  // Messages already handed to a caller (nextMessage() never returns one twice); waiters see every arrival.
  const taken = new Set<DeviceMessage>();
  const waiters = new Set<{ offer(m: DeviceMessage): boolean; cancel(): void }>();
  client.on('message', (topic, payload) => {
    const m = parse(topic, payload);
    messages.push(m);
    for (const w of waiters) if (w.offer(m)) return;
  });

  const wait = (what: string, match: (m: DeviceMessage) => boolean, fromIndex: number) =>
    new Promise<DeviceMessage>((resolve, reject) => {
      const early = messages.slice(fromIndex).find((m) => !taken.has(m) && match(m));
      if (early) {
        taken.add(early);
        resolve(early);
        return;
      }
      const fail = (why: string) => {
        done();
        reject(new Error(`${thingName}: no ${what} ${why}`));
      };
      const timer = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      const waiter = {
        offer(m: DeviceMessage): boolean {
          if (!match(m)) return false;
          taken.add(m);
          done();
          resolve(m);
          return true;
        },
        cancel: () => fail('before the device was closed'),
      };
      const done = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
    });

  const request = async (operation: string, payload: Record<string, unknown> = {}): Promise<DeviceReply> => {
    const clientToken = typeof payload.clientToken === 'string' ? payload.clientToken : randomUUID();
    const topic = `${root}/${operation}`;
    const reply = wait(
      `reply to ${topic}`,
      (m) =>
        (m.topic === `${topic}/accepted` || m.topic === `${topic}/rejected`) && tokenOf(m) === clientToken,
      messages.length,
    );
    try {
      await client.publishAsync(topic, JSON.stringify({ ...payload, clientToken }), { qos: 1 });
    } catch (err) {
      reply.catch(() => {});
      throw err;
    }
    const m = await reply;
    return { outcome: m.topic.endsWith('/accepted') ? 'accepted' : 'rejected', topic: m.topic, body: m.json };
  };

  // notify, notify-next and every reply (fleetjobs delivers replies to the requester even without it; AWS does not).
  try {
    await client.subscribeAsync(`${root}/#`, { qos: 1 });
  } catch (err) {
    await client.endAsync();
    throw err;
  }

  return {
    thingName,
    client,
    root,
    messages,
    request,
    getPending: () => request('get'),
    startNext: (payload) => request('start-next', payload),
    describe: (jobId = '$next', payload) => request(`${jobId}/get`, payload),
    update: (jobId, payload) => request(`${jobId}/update`, payload),
    nextMessage: (suffix, predicate = () => true) =>
      wait(`message on ${root}/${suffix}`, (m) => m.topic === `${root}/${suffix}` && predicate(m), 0),
    async close() {
      for (const w of [...waiters]) w.cancel();
      await client.endAsync();
    },
  };
}
