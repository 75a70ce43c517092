import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createTestCa, type TestCa, writeServerTls } from '../helpers/certs.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { insertThings } from '../../src/store/things.js';

describe('embedded broker listeners', () => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let ca: TestCa;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-listeners-'));
    ca = createTestCa('fleetjobs listeners CA');
    const server = ca.issue('localhost', { server: true });
    const tls = await writeServerTls(dir, ca, server);
    await insertThings(t.db, ['ws-thing', 'tls-thing'], new Date());
    app = await startTestServer({
      db: t.db,
      config: {
        mqttWsPort: 0,
        mqttsPort: 0,
        ...tls,
      },
    });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves MQTT over WebSocket on /mqtt', async () => {
    expect(app.addresses.ws).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const device = await connectDevice(app.addresses.ws as string);
    try {
      const reply = await deviceRequest(device, '$aws/things/ws-thing/jobs/get', { clientToken: 'ws' });
      expect(reply.json).toMatchObject({ clientToken: 'ws', inProgressJobs: [], queuedJobs: [] });
    } finally {
      await device.endAsync();
    }
  });

  it('answers ALPN x-amzn-mqtt-ca as AWS IoT does and still accepts clients that offer no ALPN', async () => {
    const url = new URL(app.addresses.mqtts as string);
    const cert = ca.issue('tls-thing');
    const negotiate = (ALPNProtocols: string[] | undefined) =>
      new Promise<string | false>((resolve, reject) => {
        const socket = tlsConnect(
          {
            host: url.hostname,
            port: Number(url.port),
            ca: ca.cert,
            cert: cert.cert,
            key: cert.key,
            ...(ALPNProtocols ? { ALPNProtocols } : {}),
          },
          () => {
            const chosen = socket.alpnProtocol;
            socket.destroy();
            resolve(chosen ?? false);
          },
        );
        socket.on('error', reject);
      });
    expect(await negotiate(['x-amzn-mqtt-ca'])).toBe('x-amzn-mqtt-ca');
    expect(await negotiate(['mqtt', 'x-amzn-mqtt-ca'])).toBe('x-amzn-mqtt-ca');
    expect(await negotiate(undefined)).toBe(false);

    const device = await connectDevice(app.addresses.mqtts as string, {
      ca: ca.cert,
      cert: cert.cert,
      key: cert.key,
      ALPNProtocols: ['x-amzn-mqtt-ca'],
    });
    try {
      const reply = await deviceRequest(device, '$aws/things/tls-thing/jobs/get', {});
      expect(reply.outcome).toBe('accepted');
    } finally {
      await device.endAsync();
    }
  });

  it('closes every listener with clients still connected', async () => {
    const other = await startTestServer({ db: t.db, config: { mqttWsPort: 0 } });
    const tcp = await connectDevice(other.addresses.mqtt);
    const ws = await connectDevice(other.addresses.ws as string);
    const closed = Promise.all(
      [tcp, ws].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))),
    );
    await other.close();
    await closed;
    expect([tcp.connected, ws.connected]).toEqual([false, false]);
    await Promise.all([tcp.endAsync(true), ws.endAsync(true)]);
  });
});
