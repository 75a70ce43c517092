import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../broker/index.js';
import { connectDevice, waitForMessage } from '../helpers/mqtt.js';

/** Rejects with the message of `what` unless the promise settles within ms (a stuck broker, not a slow one). */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what()} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** QoS 0 fan-out of the embedded broker (bench S7: a firehose, a stalled subscriber), no jobs service. */
describe('QoS 0 fan-out', () => {
  const maxQos0BacklogBytes = 64 * 1024;
  let broker: EmbeddedBroker;
  let url = '';
  const clients: MqttClient[] = [];
  const connect = async (clientId: string) => {
    const c = await connectDevice(url, { clientId });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    broker = createBroker({
      host: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      // Longer than the test: the stalled client must not be what frees the others.
      drainTimeoutMs: 60_000,
      maxQos0BacklogBytes,
      hooks: {
        inspectPublish: () => 'forward',
        answer: async () => undefined,
        isPrivateTopic: () => false,
      },
    });
    url = (await broker.start()).mqtt;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.close();
  });

  it('writes a burst of QoS 0 messages to a subscriber in a few batches, all of them in order', async () => {
    const sub = await connect('batched');
    await sub.subscribeAsync('burst/#', { qos: 0 });
    const pub = await connect('burster');
    type Write = (...args: unknown[]) => unknown;
    const conn = (
      broker.aedes as unknown as { clients: Record<string, { conn: { _writev: Write; _write: Write } }> }
    ).clients.batched?.conn;
    if (conn === undefined) throw new Error('the subscriber is not connected');
    let writes = 0;
    for (const name of ['_writev', '_write'] as const) {
      const original = conn[name].bind(conn);
      conn[name] = (...args) => {
        writes++;
        return original(...args);
      };
    }
    const n = 5_000;
    const got: number[] = [];
    const all = new Promise<void>((resolve) =>
      sub.on('message', (_topic, payload) => {
        if (got.push(Number(payload.toString())) === n) resolve();
      }),
    );
    for (let i = 0; i < n; i++) pub.publish('burst/1', String(i), { qos: 0 });
    await all;
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(writes).toBeLessThan(n / 10);
  });

  it('holds up no other client, and its QoS 0 backlog stays bounded', async () => {
    const slow = await connect('slow');
    await slow.subscribeAsync('flood/#', { qos: 1 });
    slow.stream.pause();
    const probe = await connect('probe');
    await probe.subscribeAsync('probe/1', { qos: 1 });
    const flooder = await connect('flooder');

    // ~20 MB of QoS 0: far beyond what the stalled client's socket buffers take. Aedes emits 'publish' once a
    // message has been handed to every subscriber, so the flood is through the broker when all of them are
    // counted; should the stalled client hold up the fan-out, that never happens before drainTimeout.
    const floodSize = 20_000;
    let fannedOut = 0;
    const floodThrough = new Promise<void>((resolve) =>
      broker.aedes.on('publish', (packet) => {
        if (packet.topic === 'flood/1' && ++fannedOut === floodSize) resolve();
      }),
    );
    const flood = async () => {
      const kb = Buffer.alloc(1024, 'x');
      for (let i = 0; i < floodSize; i++) {
        flooder.publish('flood/1', kb, { qos: 0 });
        if (flooder.stream.writableNeedDrain) await new Promise((r) => flooder.stream.once('drain', r));
      }
      await floodThrough;
    };
    await withTimeout(flood(), 20_000, () => `the broker fanned out ${fannedOut} of ${floodSize} messages`);

    // While the stalled client still reads nothing, another client's round trip goes through.
    const arrived = waitForMessage(probe, 'probe/1', () => true, 5_000);
    await probe.publishAsync('probe/1', 'ping', { qos: 1 });
    await arrived;
    expect(slow.stream.isPaused()).toBe(true);

    const clientsById = (
      broker.aedes as unknown as { clients: Record<string, { conn: { writableLength: number } }> }
    ).clients;
    // At most one fan-out wave (Aedes' 100 messages in flight) beyond the limit.
    expect(clientsById.slow?.conn.writableLength).toBeLessThan(maxQos0BacklogBytes + 200 * 1024);
  }, 60_000);
});
