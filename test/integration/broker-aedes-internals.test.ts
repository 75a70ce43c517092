import { readFileSync } from 'node:fs';
import type { Client } from 'aedes';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../broker/index.js';
import { connectDevice, waitForMessage } from '../helpers/mqtt.js';

const packageJson = (path: string) =>
  JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };

/**
 * broker/delivery.ts replaces Aedes' undeclared per-client `deliver0`. This file fails on an aedes version where
 * the property is gone or Aedes no longer delivers QoS 0 through it, before the broker silently loses its
 * QoS 0 shaping (bench S7's stalled-subscriber protection).
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
        inspectPublish: () => 'forward',
        answer: async () => undefined,
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
