import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetJobs } from '../../src/app.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import { takeRedisDb } from '../helpers/redis.js';
import { startTestServer } from '../helpers/server.js';

/** deploy/haproxy.cfg, as checked in, in front of three clustered nodes (needs the Debian package haproxy). */
const CONFIG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));
const HAVE_HAPROXY = spawnSync('haproxy', ['-v']).status === 0;
const RUN = randomBytes(3).toString('hex');
const rootOf = (name: string) => `$aws/things/${name}/jobs`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const hostPort = (url: string) => new URL(url).host;

describe.runIf(HAVE_HAPROXY && BACKENDS.includes('postgres'))('HAProxy in front of three nodes', () => {
  let t: TestDb;
  let redis: { url: string; release(): Promise<void> };
  const nodes: FleetJobs[] = [];
  const devices: MqttClient[] = [];
  let haproxy: ChildProcess | undefined;
  let mqttUrl = '';
  let httpUrl = '';

  beforeAll(async () => {
    t = await createTestDb('postgres');
    redis = await takeRedisDb(12);
    for (let i = 0; i < 3; i++)
      nodes.push(await startTestServer({ db: t.db, config: { redisUrl: redis.url } }));
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      FJ_MQTT_BIND: `127.0.0.1:${mqttPort}`,
      FJ_HTTP_BIND: `127.0.0.1:${httpPort}`,
    };
    nodes.forEach((n, i) => {
      env[`FJ_NODE${i + 1}_MQTT`] = hostPort(n.addresses.mqtt);
      env[`FJ_NODE${i + 1}_HTTP`] = hostPort(n.addresses.http);
    });
    expect(spawnSync('haproxy', ['-c', '-q', '-f', CONFIG], { env }).status).toBe(0);
    haproxy = spawn('haproxy', ['-db', '-f', CONFIG], { env, stdio: 'ignore' });
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    httpUrl = `http://127.0.0.1:${httpPort}`;
    // Ready once it proxies a health check through to a node.
    for (let i = 0; ; i++) {
      const ok = await fetch(`${httpUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 100) throw new Error('haproxy did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.endAsync(true)));
    haproxy?.kill('SIGKILL');
    for (const n of nodes) await n.close();
    await redis?.release();
    await t?.close();
  });

  it('spreads devices over the nodes and serves them all: notify-next from a job created through it, replies', async () => {
    const names = Array.from({ length: 9 }, (_, i) => `hp-${RUN}-${i}`);
    for (const n of names) {
      const res = await fetch(`${httpUrl}/things/${n}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
    }
    for (const n of names) devices.push(await connectDevice(mqttUrl, { clientId: n, clean: false }));
    await Promise.all(
      devices.map((d, i) => d.subscribeAsync(`${rootOf(names[i] as string)}/notify-next`, { qos: 1 })),
    );
    const perNode = nodes.map(
      (n) => (n.broker as unknown as { aedes: { connectedClients: number } }).aedes.connectedClients,
    );
    expect(perNode).toEqual([3, 3, 3]);

    const notified = devices.map((d, i) =>
      waitForMessage(
        d,
        `${rootOf(names[i] as string)}/notify-next`,
        (m) => m.json?.execution?.jobId === `hp-${RUN}`,
      ),
    );
    const created = await fetch(`${httpUrl}/jobs/hp-${RUN}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ targets: names.map((n) => `thing/${n}`), document: '{}' }),
    });
    expect(created.status).toBe(200);
    await Promise.all(notified);
    const replies = await Promise.all(
      devices.map((d, i) =>
        deviceRequest(d, `${rootOf(names[i] as string)}/start-next`, { clientToken: `hp-${i}` }),
      ),
    );
    expect(replies.map((r) => [r.outcome, r.json.clientToken, r.json.execution.jobId])).toEqual(
      names.map((_, i) => ['accepted', `hp-${i}`, `hp-${RUN}`]),
    );
  });
});
