import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, recordMessages, waitForMessage } from '../helpers/mqtt.js';
import { createTestCa, type Issued, writeServerTls } from '../helpers/certs.js';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { loadConfig } from '../../src/config.js';

const rootOf = (thing: string) => `$aws/things/${thing}/jobs`;

/** Resolves with the CONNACK return code of a refused connection, or 0 when it was accepted. */
function connackCode(url: string, options: IClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    client.once('connect', () => client.end(true, () => resolve(0)));
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      if (typeof err.code === 'number') resolve(err.code);
      else reject(err);
    });
  });
}

/** 'connected', or 'refused' when the connection closed (TLS handshake failed) or CONNACK refused it. */
function outcome(url: string, options: IClientOptions): Promise<'connected' | 'refused'> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    let connected = false;
    client.once('connect', () => {
      connected = true;
      client.end(true);
    });
    client.once('close', () => resolve(connected ? 'connected' : 'refused'));
    client.once('error', () => client.end(true));
  });
}

/** Resolves when the client is disconnected by the broker; fails after 5 s. */
function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('the broker did not disconnect the client')), 5000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe.each(BACKENDS)('device identity and topic ACL on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey | undefined;
  let dir: string;
  const secrets: Record<string, string> = {};
  let ourDevice: Issued;
  let rogueDevice: Issued;

  const api = async (method: string, path: string) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin?.token}` },
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const asThing = (name: string, extra: IClientOptions = {}) =>
    connectDevice(app.addresses.mqtt, {
      clientId: `${name}-${Math.random()}`,
      username: name,
      password: secrets[name],
      ...extra,
    });
  const executions = () =>
    t.db.query(
      `SELECT job_id, thing_name, status, version_number, status_details FROM job_executions ORDER BY job_id, thing_name`,
    );

  beforeAll(async () => {
    t = await createTestDb(backend);
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-tls-'));
    const ca = createTestCa('fleetjobs test CA');
    const other = createTestCa('someone else');
    const server = ca.issue('localhost', { server: true });
    ourDevice = ca.issue('thing-c');
    rogueDevice = other.issue('thing-a');
    const tls = await writeServerTls(dir, ca, server);
    await insertThings(t.db, ['thing-a', 'thing-b', 'thing-c', 'thing-d', 'thing-e'], new Date());
    app = await startTestServer({
      db: t.db,
      auth: { onAdminKeyCreated: (k) => (admin = k) },
      config: {
        mqttsPort: 0,
        ...tls,
      },
    });
    for (const name of ['thing-a', 'thing-b', 'thing-d']) {
      const created = await api('POST', `/things/${name}/credentials`);
      expect(created.status).toBe(200);
      secrets[name] = created.json.secret as string;
    }
    // PGlite's start and three scrypt hashes take long on a loaded 2-core machine.
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps only a scrypt hash of a device secret', async () => {
    const rows = await t.db.query<{ secretHash: string }>(
      `SELECT secret_hash FROM thing_credentials WHERE thing_name = 'thing-a'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.secretHash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(rows[0]?.secretHash).not.toContain(secrets['thing-a']);
  });

  it('refuses at CONNACK a wrong secret, an unknown thing, no credentials, and another thing s secret', async () => {
    const url = app.addresses.mqtt;
    expect(await connackCode(url, { username: 'thing-a', password: secrets['thing-a'] })).toBe(0);
    expect(await connackCode(url, { username: 'thing-a', password: 'guess' })).toBe(5);
    expect(await connackCode(url, { username: 'thing-a', password: secrets['thing-b'] })).toBe(5);
    expect(await connackCode(url, { username: 'nobody', password: secrets['thing-a'] })).toBe(5);
    expect(await connackCode(url, {})).toBe(5);
    expect(await connackCode(url, { username: 'thing-a' })).toBe(5);
    expect(await connackCode(url, { username: 'thing-a', password: 'x'.repeat(10_000) })).toBe(5);
    expect(await connackCode(url, { username: 'thing-c', password: 'anything' })).toBe(5);
  });

  it('refuses a revoked secret and accepts the rotated one; rotation revokes the old one at once', async () => {
    const url = app.addresses.mqtt;
    const old = secrets['thing-d'] as string;
    const rotated = await api('POST', '/things/thing-d/credentials/rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.json.revokedCredentialIds).toHaveLength(1);
    const fresh = rotated.json.secret as string;
    expect(await connackCode(url, { username: 'thing-d', password: old })).toBe(5);
    expect(await connackCode(url, { username: 'thing-d', password: fresh })).toBe(0);
    const revoked = await api('DELETE', `/things/thing-d/credentials/${rotated.json.credentialId as string}`);
    expect(revoked.status).toBe(200);
    expect(await connackCode(url, { username: 'thing-d', password: fresh })).toBe(5);
    const listed = await api('GET', '/things/thing-d/credentials');
    expect((listed.json.credentials as { status: string }[]).map((c) => c.status)).toEqual([
      'REVOKED',
      'REVOKED',
    ]);
  });

  it('ends the open session of a revoked secret at once, and refuses it afterwards', async () => {
    const created = await api('POST', '/things/thing-e/credentials');
    const e = await connectDevice(app.addresses.mqtt, {
      clientId: 'thing-e-1',
      username: 'thing-e',
      password: created.json.secret as string,
    });
    expect((await deviceRequest(e, `${rootOf('thing-e')}/get`, {})).outcome).toBe('accepted');
    const bye = closed(e);
    expect((await api('DELETE', '/things/thing-e/credentials')).status).toBe(200);
    await bye;
    await e.endAsync(true);
    expect(
      await connackCode(app.addresses.mqtt, { username: 'thing-e', password: created.json.secret as string }),
    ).toBe(5);
  });

  it('takes the thing name from a client certificate of our CA and refuses one from another CA', async () => {
    const mqtts = app.addresses.mqtts as string;
    const tls = (issued: Issued) => ({
      key: issued.key,
      cert: issued.cert,
      rejectUnauthorized: false,
      username: '?SDK=JavaScript&Version=2&Platform=x',
    });
    const c = await connectDevice(mqtts, { clientId: 'cert-c', ...tls(ourDevice) });
    await createJob(app.deps, { jobId: 'cert-job', targets: ['thing/thing-c'], document: '{"op":"x"}' });
    const reply = await deviceRequest(c, `${rootOf('thing-c')}/start-next`, { clientToken: 'c1' });
    expect(reply.outcome).toBe('accepted');
    expect(reply.json.execution.jobId).toBe('cert-job');
    const bye = closed(c);
    c.publish(`${rootOf('thing-a')}/get`, '{}');
    await bye;
    await c.endAsync();
    // The handshake fails: the server verifies the chain against TLS_CA before MQTT starts.
    expect(await outcome(mqtts, { clientId: 'again', ...tls(ourDevice) })).toBe('connected');
    expect(await outcome(mqtts, { clientId: 'rogue', ...tls(rogueDevice) })).toBe('refused');
    expect(await outcome(mqtts, { clientId: 'nocert', rejectUnauthorized: false })).toBe('refused');
    expect(
      await outcome(mqtts, {
        clientId: 'rogue-pw',
        ...tls(rogueDevice),
        username: 'thing-a',
        password: secrets['thing-a'],
      }),
    ).toBe('refused');
  });

  it('denies thing A every attempt on thing B; B sees nothing and no state changes', async () => {
    const b = await asThing('thing-b');
    await b.subscribeAsync(`${rootOf('thing-b')}/#`, { qos: 1 });
    const firstNotify = waitForMessage(b, `${rootOf('thing-b')}/notify-next`);
    await createJob(app.deps, { jobId: 'job-b', targets: ['thing/thing-b'], document: '{"op":"b"}' });
    await createJob(app.deps, { jobId: 'job-a', targets: ['thing/thing-a'], document: '{"op":"a"}' });
    expect((await firstNotify).json.execution.jobId).toBe('job-b');
    const seenByB = recordMessages(b, '#');
    const before = await executions();

    // Subscriptions outside A's own root: refused (SUBACK failure or disconnect), nothing delivered.
    const subscribeDenied = async (filter: string) => {
      const a = await asThing('thing-a');
      const bye = closed(a);
      const granted = await Promise.race([
        a.subscribeAsync(filter, { qos: 1 }).then((g) => g[0]?.qos),
        bye.then(() => 'closed'),
      ]);
      expect([128, 'closed']).toContain(granted);
      await a.endAsync(true);
    };
    for (const filter of [
      `${rootOf('thing-b')}/notify`,
      `${rootOf('thing-b')}/notify-next`,
      `${rootOf('thing-b')}/start-next/accepted`,
      `${rootOf('thing-b')}/+/update/#`,
      '$aws/things/+/jobs/#',
      '#',
      '$aws/#',
      '$aws/events/#',
      '$SYS/#',
      '+/things/thing-b/jobs/notify',
      `$share/g/${rootOf('thing-b')}/notify`,
    ]) {
      await subscribeDenied(filter);
    }

    // Publishes A may not make: B's request topics, and the service's own reply and notify topics (A's too).
    const publishDenied = async (topic: string, payload: string) => {
      const a = await asThing('thing-a');
      const bye = closed(a);
      a.publish(topic, payload, { qos: 1 });
      await bye;
      await a.endAsync(true);
    };
    const forged = JSON.stringify({ status: 'SUCCEEDED', clientToken: 'forged' });
    for (const topic of [
      `${rootOf('thing-b')}/start-next`,
      `${rootOf('thing-b')}/get`,
      `${rootOf('thing-b')}/job-b/get`,
      `${rootOf('thing-b')}/job-b/update`,
      `${rootOf('thing-b')}/$next/get`,
      `${rootOf('thing-b')}/notify-next`,
      `${rootOf('thing-b')}/job-b/update/accepted`,
      `${rootOf('thing-a')}/notify`,
      `${rootOf('thing-a')}/notify-next`,
      `${rootOf('thing-a')}/get/accepted`,
      `${rootOf('thing-a')}/job-a/update/rejected`,
      '$aws/events/job/job-b/completed',
      'some/other/topic',
      '$SYS/broker/uptime',
    ]) {
      await publishDenied(topic, forged);
    }

    // Spoofing B in a payload on A's own topics: the thing name comes from the identity, so B's job is unknown to A.
    const a = await asThing('thing-a');
    const spoofUpdate = await deviceRequest(a, `${rootOf('thing-a')}/job-b/update`, {
      thingName: 'thing-b',
      status: 'SUCCEEDED',
      clientToken: 's1',
    });
    expect(spoofUpdate.outcome).toBe('rejected');
    expect(spoofUpdate.json.code).toBe('ResourceNotFound');
    const spoofDescribe = await deviceRequest(a, `${rootOf('thing-a')}/job-b/get`, {
      thingName: 'thing-b',
      clientToken: 's2',
    });
    expect(spoofDescribe.json.code).toBe('ResourceNotFound');

    expect(await executions()).toEqual(before);
    // A's own request works (the denials above are the ACL, not a broken client), and changes only A's execution.
    const own = await deviceRequest(a, `${rootOf('thing-a')}/start-next`, {
      thingName: 'thing-b',
      clientToken: 'own',
    });
    expect(own.outcome).toBe('accepted');
    expect(own.json.execution.jobId).toBe('job-a');
    const described = await deviceRequest(b, `${rootOf('thing-b')}/job-b/get`, { clientToken: 'check' });
    expect(described.json.execution).toMatchObject({ status: 'QUEUED', versionNumber: 1 });
    expect(seenByB.filter((m) => m.json?.clientToken !== 'check')).toEqual([]);
    await a.endAsync();
    await b.endAsync();
  });

  it('closes the connection of a packet over MAX_MQTT_PACKET_BYTES before buffering it, and answers one under it', async () => {
    const a = await asThing('thing-a');
    const near = await deviceRequest(
      a,
      `${rootOf('thing-a')}/get`,
      Buffer.alloc(LIMITS.MAX_MQTT_PAYLOAD_BYTES + 1, 0x20),
    );
    expect(near.json.code).toBe('InvalidRequest');
    const bye = closed(a);
    a.publish(`${rootOf('thing-a')}/get`, Buffer.alloc(LIMITS.MAX_MQTT_PACKET_BYTES, 0x20));
    await bye;
    await a.endAsync(true);
    const again = await asThing('thing-a');
    expect((await deviceRequest(again, `${rootOf('thing-a')}/get`, {})).outcome).toBe('accepted');
    await again.endAsync();
  });

  it('answers RequestThrottled past the per-thing rate set by DEVICE_RATE_LIMIT', async () => {
    const limited = await startTestServer({
      db: t.db,
      auth: {},
      config: { deviceRateLimit: loadConfig({ DEVICE_RATE_LIMIT: '0.001/2' }).deviceRateLimit },
    });
    try {
      const a = await connectDevice(limited.addresses.mqtt, {
        clientId: 'limited-a',
        username: 'thing-a',
        password: secrets['thing-a'],
      });
      const codes = [];
      for (let i = 0; i < 3; i++) {
        const r = await deviceRequest(a, `${rootOf('thing-a')}/get`, { clientToken: `r${i}` });
        codes.push(r.outcome === 'accepted' ? 'accepted' : r.json.code);
      }
      expect(codes).toEqual(['accepted', 'accepted', 'RequestThrottled']);
      await a.endAsync();
    } finally {
      await limited.close();
    }
  });
});
