import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createTestCa, type TestCa, writeServerTls } from '../helpers/certs.js';
import type { FleetJobs } from '../../src/app.js';
import { createAgent } from '../../agent/index.js';
import { agentPool, nextEvent } from './helpers.js';

const echo = (text: string) =>
  JSON.stringify({
    version: '1.0',
    includeStdOut: true,
    steps: [{ action: { name: 'echo', type: 'runCommand', input: { command: `echo,${text}` } } }],
  });

describe('the device agent with AUTH_MODE=required (PostgreSQL)', () => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let ca: TestCa;
  let adminToken = '';
  const pool = agentPool(() => app.addresses.mqtt);

  const api = async (method: string, path: string, body: unknown = {}) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fj-agent-tls-'));
    ca = createTestCa('agent test CA');
    const server = ca.issue('localhost', { server: true });
    const tls = await writeServerTls(dir, ca, server);
    app = await startTestServer({
      db: t.db,
      auth: { onAdminKeyCreated: (k) => (adminToken = k.token) },
      config: {
        mqttsPort: 0,
        ...tls,
      },
    });
  });
  afterEach(() => pool.stopAll());
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs in with the thing name and its secret, and is refused with a wrong one', async () => {
    await api('POST', '/things/tok-1');
    const { secret } = (await api('POST', '/things/tok-1/credentials')) as { secret: string };
    await api('PUT', '/jobs/tok-job', { targets: ['thing/tok-1'], document: echo('with a token') });

    const intruder = createAgent({
      url: app.addresses.mqtt,
      thingName: 'tok-1',
      credentials: { token: 'not-the-secret' },
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    const refused = nextEvent(intruder, 'error');
    const started = intruder.start();
    expect((await refused).message).toMatch(/Not authorized|Bad username or password/);
    await intruder.stop();
    await started;

    const agent = await pool.start('tok-1', { credentials: { token: secret } });
    expect(await nextEvent(agent, 'job:done')).toMatchObject({
      jobId: 'tok-job',
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'with a token' },
    });
  });

  it('logs in over TLS with a client certificate whose CN is the thing name', async () => {
    await api('POST', '/things/cert-1');
    await api('PUT', '/jobs/cert-job', { targets: ['thing/cert-1'], document: echo('with a certificate') });
    const device = ca.issue('cert-1');
    const agent = await pool.start('cert-1', {
      url: app.addresses.mqtts as string,
      credentials: { cert: device.cert, key: device.key, ca: ca.cert },
    });
    expect(await nextEvent(agent, 'job:done')).toMatchObject({
      jobId: 'cert-job',
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'with a certificate' },
    });
  });
});
