import { readFileSync } from 'node:fs';
import type { AedesPublishPacket, Client } from 'aedes';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../broker/index.js';
import { connectDevice, recordMessages, waitForMessage } from '../helpers/mqtt.js';

const packageJson = (path: string) =>
  JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };

/**
 * broker/delivery.ts replaces Aedes' undeclared per-client `deliver0`, and gives the messages it writes to one
 * client a brokerId and brokerCounter of their own. This file fails on an aedes version where the property is
 * gone or Aedes no longer delivers QoS 0 through it, before the broker silently loses its QoS 0 shaping (bench
 * S7's stalled-subscriber protection), or where a reply again makes Aedes drop a message published before it.
 */
describe('the Aedes internals the embedded broker relies on', () => {
  let broker: EmbeddedBroker;
  let url = '';
  const devices: MqttClient[] = [];
  const calls = new Map<string, number>();
  const originals = new Map<string, string>();

  beforeAll(async () => {
    broker = createBroker({
      host: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      hooks: {
        authenticate: async (client, username) => ({ ok: true, identity: username ?? client.id }),
        inspectPublish: (_client, topic) => (topic.endsWith('/request') ? 'answer' : 'forward'),
        answer: async (_client, topic) => ({ topic: `${topic}/reply`, payload: Buffer.from('reply') }),
        isPrivateTopic: () => false,
      },
    });
    // 'client' is emitted before CONNACK, so before the client can subscribe (when Aedes takes deliver0).
    broker.aedes.on('client', (client: Client) => {
      const c = client as Client & { deliver0: (...args: unknown[]) => unknown };
      const shaped = c.deliver0;
      originals.set(client.id, shaped.name);
      c.deliver0 = (...args) => {
        calls.set(client.id, (calls.get(client.id) ?? 0) + 1);
        return shaped(...args);
      };
    });
    url = (await broker.start()).mqtt;
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.endAsync(true)));
    await broker?.close();
  });

  it('runs on the exact aedes version package.json pins', () => {
    const pinned = packageJson('../../package.json').dependencies.aedes;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(packageJson('../../node_modules/aedes/package.json').version).toBe(pinned);
  });

  it('delivers QoS 0 messages through the shaped deliver0 installed on each client', async () => {
    const sub = await connectDevice(url, { clientId: 'sub-0' });
    devices.push(sub);
    await sub.subscribeAsync('internals/0', { qos: 0 });
    const pub = await connectDevice(url, { clientId: 'pub-0' });
    devices.push(pub);
    const got = waitForMessage(sub, 'internals/0');
    pub.publish('internals/0', 'hello', { qos: 0 });
    expect((await got).payload.toString()).toBe('hello');
    expect(originals.get('sub-0')).not.toBe('deliverQoS0');
    expect(calls.get('sub-0')).toBeGreaterThanOrEqual(1);
  });

  it('a reply that overtakes a message published to the client before it does not make Aedes drop that message', async () => {
    // Aedes delivers a message to a client only if its brokerCounter is above the last one the client got from
    // the same brokerId. A fan-out publish takes the longer path (in cluster mode, through Redis): it is held here
    // until the reply, written later with a higher counter, has arrived.
    const mq = (broker.aedes as unknown as { mq: { emit(p: AedesPublishPacket, cb: () => void): void } }).mq;
    const emit = mq.emit.bind(mq);
    const held: (() => void)[] = [];
    mq.emit = (packet, cb) => {
      if (packet.topic === 'internals/order/notify') held.push(() => emit(packet, cb));
      else emit(packet, cb);
    };
    try {
      for (const clean of [true, false]) {
        const device = await connectDevice(url, { clientId: `order-${clean}`, clean });
        devices.push(device);
        // The reply arrives without a subscription; the request itself is not subscribed to.
        await device.subscribeAsync(['internals/order/notify', 'internals/order/last'], { qos: 1 });
        const seen = recordMessages(device, 'internals/order/#');
        const published = broker.publish('internals/order/notify', 'published first', 1);
        const reply = waitForMessage(device, 'internals/order/request/reply');
        await device.publishAsync('internals/order/request', 'ask', { qos: 1 });
        await reply;
        for (const release of held.splice(0)) release();
        await published;
        // Published after both, through the fan-out: once it is in, so is everything before it.
        const last = waitForMessage(device, 'internals/order/last');
        await broker.publish('internals/order/last', 'published last', 1);
        await last;
        expect(seen.map((m) => m.payload.toString())).toEqual(['reply', 'published first', 'published last']);
      }
    } finally {
      mq.emit = emit;
    }
  });

  it('closes every connection of an identity and only those', async () => {
    const a1 = await connectDevice(url, { clientId: 'a-1', username: 'thing-a', password: 'x' });
    const a2 = await connectDevice(url, { clientId: 'a-2', username: 'thing-a', password: 'x' });
    const b = await connectDevice(url, { clientId: 'b-1', username: 'thing-b', password: 'x' });
    devices.push(a1, a2, b);
    const closed = Promise.all(
      [a1, a2].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))),
    );
    expect(broker.disconnectIdentity('thing-a')).toBe(2);
    await closed;
    expect(b.connected).toBe(true);
    expect(broker.disconnectIdentity('thing-a')).toBe(0);
  });
});
