import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DescribeJobExecutionCommand,
  GetPendingJobExecutionsCommand,
  IoTJobsDataPlaneClient,
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
} from '@aws-sdk/client-iot-jobs-data-plane';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createJob } from '../../src/service/create-job.js';
import { createThingCredential } from '../../src/service/credentials.js';
import { selectJob } from '../../src/store/jobs.js';
import { insertThings } from '../../src/store/things.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createTestCa, type Issued, type TestCa, writeServerTls } from '../helpers/certs.js';

/** The error an SDK call rejects with: its exception name and HTTP status. */
async function failure(
  p: Promise<unknown>,
): Promise<{ name: string; status: number | undefined; message: string }> {
  const err = (await p.then(
    () => {
      throw new Error('the call succeeded; a failure was expected');
    },
    (e: unknown) => e,
  )) as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
  return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
}

describe('device HTTPS data plane (AWS iot-jobs-data) on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  let client: IoTJobsDataPlaneClient;
  let base: string;
  const document = '{ "operation": "reboot",  "delay": 5 }';

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db, config: { deviceHttpPort: 0 } });
    base = app.addresses.deviceHttp as string;
    client = new IoTJobsDataPlaneClient({
      endpoint: base,
      region: 'local',
      credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' },
      maxAttempts: 1,
    });
    await insertThings(t.db, ['https-1', 'https-idle'], new Date());
    await createJob(app.deps, { jobId: 'https-job', targets: ['thing/https-1'], document });
  });
  afterAll(async () => {
    client?.destroy();
    await app?.close();
    await t?.close();
  });

  it('lists pending executions, starts the next, describes it and completes the job with SUCCEEDED', async () => {
    const pending = await client.send(new GetPendingJobExecutionsCommand({ thingName: 'https-1' }));
    expect(pending.inProgressJobs).toEqual([]);
    expect(pending.queuedJobs).toHaveLength(1);
    expect(pending.queuedJobs?.[0]).toMatchObject({
      jobId: 'https-job',
      versionNumber: 1,
      executionNumber: 1,
    });
    expect(Number.isInteger(pending.queuedJobs?.[0]?.queuedAt)).toBe(true);

    const started = await client.send(
      new StartNextPendingJobExecutionCommand({ thingName: 'https-1', statusDetails: { step: 'download' } }),
    );
    expect(started.execution).toMatchObject({
      jobId: 'https-job',
      thingName: 'https-1',
      status: 'IN_PROGRESS',
      versionNumber: 2,
      executionNumber: 1,
      statusDetails: { step: 'download' },
      // The document as the operator sent it, a JSON string (reference §7), whitespace and all.
      jobDocument: document,
    });

    const described = await client.send(
      new DescribeJobExecutionCommand({
        thingName: 'https-1',
        jobId: 'https-job',
        includeJobDocument: false,
      }),
    );
    expect(described.execution?.status).toBe('IN_PROGRESS');
    expect(described.execution?.jobDocument).toBeUndefined();
    const next = await client.send(new DescribeJobExecutionCommand({ thingName: 'https-1', jobId: '$next' }));
    expect(next.execution).toMatchObject({ jobId: 'https-job', jobDocument: document });

    const updated = await client.send(
      new UpdateJobExecutionCommand({
        thingName: 'https-1',
        jobId: 'https-job',
        status: 'SUCCEEDED',
        expectedVersion: 2,
        includeJobExecutionState: true,
        includeJobDocument: true,
      }),
    );
    expect(updated.executionState).toEqual({
      status: 'SUCCEEDED',
      statusDetails: { step: 'download' },
      versionNumber: 3,
    });
    expect(updated.jobDocument).toBe(document);
    expect((await selectJob(t.db, 'https-job'))?.status).toBe('COMPLETED');

    const empty = await client.send(new StartNextPendingJobExecutionCommand({ thingName: 'https-1' }));
    expect(empty.execution).toBeUndefined();
  });

  it('answers with the data-plane exception names and statuses, and changes nothing', async () => {
    expect(
      await failure(
        client.send(
          new UpdateJobExecutionCommand({ thingName: 'https-1', jobId: 'https-job', status: 'FAILED' }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidStateTransitionException', status: 409 });
    expect(
      await failure(
        client.send(new DescribeJobExecutionCommand({ thingName: 'https-1', jobId: 'https-job' })),
      ),
    ).toMatchObject({ name: 'TerminalStateException', status: 410 });
    expect(
      await failure(client.send(new DescribeJobExecutionCommand({ thingName: 'https-1', jobId: 'nope' }))),
    ).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    expect(
      await failure(
        client.send(
          new UpdateJobExecutionCommand({ thingName: 'https-1', jobId: 'https-job', status: 'CANCELED' }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidRequestException', status: 400 });

    await createJob(app.deps, { jobId: 'https-job-2', targets: ['thing/https-1'], document: '{}' });
    const stale = await failure(
      client.send(
        new UpdateJobExecutionCommand({
          thingName: 'https-1',
          jobId: 'https-job-2',
          status: 'IN_PROGRESS',
          expectedVersion: 7,
        }),
      ),
    );
    expect(stale).toMatchObject({ name: 'InvalidStateTransitionException', status: 409 });
    expect(stale.message).toContain('expectedVersion 7');
    const still = await client.send(
      new DescribeJobExecutionCommand({ thingName: 'https-1', jobId: 'https-job-2' }),
    );
    expect(still.execution).toMatchObject({ status: 'QUEUED', versionNumber: 1 });
  });

  it('rejects malformed bodies, bad names and unknown paths with a JSON error, never a crash', async () => {
    const bad = [
      {
        method: 'POST',
        path: '/things/https-1/jobs/https-job-2',
        body: '{"status":',
        type: 'application/json',
      },
      { method: 'POST', path: '/things/https-1/jobs/https-job-2', body: '[1]', type: 'text/plain' },
      {
        method: 'PUT',
        path: '/things/https-1/jobs/$next',
        body: '{"stepTimeoutInMinutes":0}',
        type: 'application/json',
      },
      { method: 'PUT', path: '/things/https-1/jobs/https-job-2', body: '{}', type: 'application/json' },
      { method: 'GET', path: '/things/bad%20name/jobs', body: undefined, type: undefined },
      {
        method: 'GET',
        path: '/things/https-1/jobs/https-job-2?executionNumber=-1',
        body: undefined,
        type: undefined,
      },
      {
        method: 'GET',
        path: '/things/https-1/jobs/x?includeJobDocument=yes',
        body: undefined,
        type: undefined,
      },
    ];
    for (const b of bad) {
      const res = await fetch(`${base}${b.path}`, {
        method: b.method,
        ...(b.body === undefined ? {} : { body: b.body, headers: { 'content-type': b.type as string } }),
      });
      expect(res.status, `${b.method} ${b.path} ${b.body ?? ''}`).toBe(400);
      expect(res.headers.get('x-amzn-errortype')).toBe('InvalidRequestException');
      expect(typeof ((await res.json()) as { message: unknown }).message).toBe('string');
    }
    const malformed = await fetch(`${base}/things/%E0%A4%A/jobs`);
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('x-amzn-errortype')).toBe('InvalidRequestException');
    // The longest thing name routes like any other (one with no executions has empty lists).
    const longest = await fetch(`${base}/things/${'t'.repeat(128)}/jobs`);
    expect(longest.status).toBe(200);
    expect(await longest.json()).toEqual({ inProgressJobs: [], queuedJobs: [] });
    // AUTH_MODE=off accepts anyone, credentials or not, as the broker does.
    const anyone = await fetch(`${base}/things/https-1/jobs`, {
      headers: { authorization: `Basic ${Buffer.from('https-1:not-a-secret').toString('base64')}` },
    });
    expect(anyone.status).toBe(200);
    const unknown = await fetch(`${base}/jobs`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');
    const still = await client.send(
      new DescribeJobExecutionCommand({ thingName: 'https-1', jobId: 'https-job-2' }),
    );
    expect(still.execution).toMatchObject({ status: 'QUEUED', versionNumber: 1 });
  });

  it('counts data-plane requests in GET /metrics by operation and outcome', async () => {
    const text = await (await fetch(`${app.addresses.http}/metrics`)).text();
    expect(text).toContain(
      'fleetjobs_device_requests_total{transport="https",operation="UpdateJobExecution",outcome="accepted"} 1',
    );
    expect(text).toContain(
      'fleetjobs_device_requests_total{transport="https",operation="DescribeJobExecution",outcome="TerminalStateReached"} 1',
    );
  });
});

describe('device HTTPS data plane with AUTH_MODE=required on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  let base: string;
  let secret: string;
  let otherSecret: string;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db, auth: {}, config: { deviceHttpPort: 0 } });
    base = app.addresses.deviceHttp as string;
    await insertThings(t.db, ['auth-dev', 'auth-other'], new Date());
    secret = (await createThingCredential(app.deps, 'auth-dev', { rotate: false })).secret;
    otherSecret = (await createThingCredential(app.deps, 'auth-other', { rotate: false })).secret;
    await createJob(app.deps, { jobId: 'auth-job', targets: ['thing/auth-dev'], document: '{}' });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
  });

  const basic = (user: string, pass: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
  });

  it('accepts the thing name and its secret as HTTP Basic credentials', async () => {
    const res = await fetch(`${base}/things/auth-dev/jobs`, { headers: basic('auth-dev', secret) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { queuedJobs: { jobId: string }[] }).queuedJobs[0]?.jobId).toBe('auth-job');
  });

  it('refuses a request without credentials or with a wrong secret (401), and another thing (403)', async () => {
    const none = await fetch(`${base}/things/auth-dev/jobs`);
    expect(none.status).toBe(401);
    expect(none.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    const wrong = await fetch(`${base}/things/auth-dev/jobs`, { headers: basic('auth-dev', 'guess') });
    expect(wrong.status).toBe(401);
    const other = await fetch(`${base}/things/auth-dev/jobs/$next`, {
      method: 'PUT',
      headers: { ...basic('auth-other', otherSecret), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(other.status).toBe(403);
    expect(other.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    // The refused start-next changed nothing.
    const res = await fetch(`${base}/things/auth-dev/jobs/auth-job`, { headers: basic('auth-dev', secret) });
    expect(((await res.json()) as { execution: { status: string } }).execution.status).toBe('QUEUED');
  });
});

describe('device HTTPS data plane rate limit on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await createFleetJobs({
      config: { ...loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off' }), deviceHttpPort: 0 },
      db: t.db,
      logger: pino({ level: 'silent' }),
      deviceRateLimit: { perSecond: 0.001, burst: 2 },
    });
    await app.start();
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
  });

  it('answers ThrottlingException (429) past the per-thing burst, and other things are not affected', async () => {
    const get = (thing: string) => fetch(`${app.addresses.deviceHttp}/things/${thing}/jobs`);
    expect((await get('busy')).status).toBe(200);
    expect((await get('busy')).status).toBe(200);
    const throttled = await get('busy');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('x-amzn-errortype')).toBe('ThrottlingException');
    expect((await get('calm')).status).toBe(200);
  });
});

describe('device HTTPS data plane over mTLS on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let ca: TestCa;
  let device: Issued;
  let rogue: Issued;

  /** One HTTPS GET with the given client certificate; `refused` when the TLS handshake fails. */
  function get(
    path: string,
    client: Issued | undefined,
  ): Promise<{ status: number; errorType: string | undefined; body: string } | 'refused'> {
    const url = new URL(`${app.addresses.deviceHttp}${path}`);
    return new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          ca: ca.cert,
          ...(client ? { cert: client.cert, key: client.key } : {}),
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              errorType: res.headers['x-amzn-errortype'] as string,
              body,
            }),
          );
        },
      );
      req.on('error', () => resolve('refused'));
      req.end();
    });
  }

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-device-tls-'));
    ca = createTestCa('fleetjobs device CA');
    const server = ca.issue('localhost', { server: true });
    device = ca.issue('tls-dev');
    rogue = createTestCa('someone else').issue('tls-dev');
    const tls = await writeServerTls(dir, ca, server);
    await insertThings(t.db, ['tls-dev', 'tls-other'], new Date());
    app = await startTestServer({
      db: t.db,
      auth: {},
      config: {
        deviceHttpPort: 0,
        ...tls,
      },
    });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('takes the thing name from the client certificate CN and refuses certificates of another CA', async () => {
    expect(app.addresses.deviceHttp).toMatch(/^https:\/\//);
    expect(await get('/things/tls-dev/jobs', device)).toMatchObject({ status: 200 });
    expect(await get('/things/tls-other/jobs', device)).toMatchObject({
      status: 403,
      errorType: 'ForbiddenException',
    });
    expect(await get('/things/tls-dev/jobs', rogue)).toBe('refused');
    expect(await get('/things/tls-dev/jobs', undefined)).toBe('refused');
  });
});
