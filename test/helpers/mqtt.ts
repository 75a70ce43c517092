import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: Buffer;
  /** The payload parsed as JSON (undefined when it is not JSON). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function parse(topic: string, payload: Buffer): Received {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { topic, payload, json };
}

/** Connects an MQTT.js client (MQTT 3.1.1, no reconnect) and resolves once CONNACK arrived. */
export async function connectDevice(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
}

/** Does an MQTT topic filter (with + and #) match a topic? */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Resolves with the first message on a topic (filter) that satisfies the predicate, received from now on;
 * rejects after timeoutMs with an error naming the topic.
 */
export function waitForMessage(
  client: MqttClient,
  topic: string,
  predicate: (m: Received) => boolean = () => true,
  timeoutMs = 5000,
): Promise<Received> {
  return new Promise((resolve, reject) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (!topicMatches(topic, t)) return;
      const m = parse(t, payload);
      if (!predicate(m)) return;
      cleanup();
      resolve(m);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      client.off('message', onMessage);
    };
    client.on('message', onMessage);
  });
}

/** Records every message a client receives on a topic (filter), in order. */
export function recordMessages(client: MqttClient, topic: string): Received[] {
  const seen: Received[] = [];
  client.on('message', (t, payload) => {
    if (topicMatches(topic, t)) seen.push(parse(t, payload));
  });
  return seen;
}

/**
 * Publishes a device request and resolves with its reply (accepted or rejected), matched by clientToken when the
 * request has one. The reply arrives whether or not the client subscribed to the reply topics.
 */
export async function deviceRequest(
  client: MqttClient,
  topic: string,
  payload: object | string | Buffer,
  timeoutMs = 5000,
): Promise<Received & { outcome: 'accepted' | 'rejected' }> {
  const body = typeof payload === 'object' && !Buffer.isBuffer(payload) ? JSON.stringify(payload) : payload;
  const token =
    typeof payload === 'object' && !Buffer.isBuffer(payload)
      ? (payload as { clientToken?: unknown }).clientToken
      : undefined;
  const reply = waitForMessage(
    client,
    `${topic}/+`,
    (m) =>
      (m.topic === `${topic}/accepted` || m.topic === `${topic}/rejected`) &&
      (typeof token !== 'string' || m.json?.clientToken === token),
    timeoutMs,
  );
  await client.publishAsync(topic, body, { qos: 1 });
  const m = await reply;
  return { ...m, outcome: m.topic.endsWith('/accepted') ? 'accepted' : 'rejected' };
}
