import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');

describe.each(BACKENDS)('job priority (fleetjobs extension) on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  let now = new Date(T0);
  const at = (s: number) => (now = new Date(T0 + s * 1000));
  const rest = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const job = (jobId: string, thing: string, extra: object = {}) =>
    rest('PUT', `/jobs/${jobId}`, {
      targets: [`thing/${thing}`],
      document: JSON.stringify({ op: jobId }),
      ...extra,
    });
  const root = (thing: string) => `$aws/things/${thing}/jobs`;
  const queuedIds = async (thing: string) =>
    ((await deviceRequest(device, `${root(thing)}/get`, {})).json.queuedJobs as { jobId: string }[]).map(
      (j) => j.jobId,
    );

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db, clock: () => now });
    for (const thing of ['prio', 'plain', 'retry']) {
      expect((await rest('POST', `/things/${thing}`)).status).toBe(200);
    }
    device = await connectDevice(app.addresses.mqtt, { clientId: 'prio' });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('orders pending executions by priority (higher first), then queuedAt, for get, start-next and notify-next', async () => {
    at(0);
    await job('low', 'prio', { priority: -5 });
    at(1);
    await job('none', 'prio');
    at(2);
    await job('high-late', 'prio', { priority: 7 });
    at(3);
    await job('mid', 'prio', { priority: 3 });
    at(4);
    await job('high-later', 'prio', { priority: 7 });
    expect(await queuedIds('prio')).toEqual(['high-late', 'high-later', 'mid', 'none', 'low']);

    await device.subscribeAsync(`${root('prio')}/notify-next`, { qos: 1 });
    const started = await deviceRequest(device, `${root('prio')}/start-next`, {});
    expect(started.json.execution).toMatchObject({ jobId: 'high-late', status: 'IN_PROGRESS' });

    // An IN_PROGRESS execution stays the head even when a job of higher priority arrives.
    at(5);
    await job('urgent', 'prio', { priority: 1000 });
    const head = await deviceRequest(device, `${root('prio')}/$next/get`, {});
    expect(head.json.execution).toMatchObject({ jobId: 'high-late' });

    const next = waitForMessage(device, `${root('prio')}/notify-next`);
    await deviceRequest(device, `${root('prio')}/high-late/update`, { status: 'SUCCEEDED' });
    expect((await next).json.execution).toMatchObject({ jobId: 'urgent' });

    expect((await rest('GET', '/jobs/urgent')).body.job).toMatchObject({ priority: 1000 });
    expect((await rest('GET', '/jobs/none')).body.job).not.toHaveProperty('priority');
  });

  it('keeps AWS order (queuedAt) when no job has a priority, and a priority of 0 is the default', async () => {
    at(10);
    await job('p-b', 'plain');
    at(11);
    await job('p-a', 'plain', { priority: 0 });
    at(12);
    await job('p-c', 'plain');
    expect(await queuedIds('plain')).toEqual(['p-b', 'p-a', 'p-c']);
  });

  it('gives a retry the priority of its job, and takes a template priority unless CreateJob names one', async () => {
    expect(
      (
        await rest('PUT', '/job-templates/prio-template', {
          description: 'urgent by default',
          document: JSON.stringify({ op: 'templated' }),
          priority: 9,
        })
      ).status,
    ).toBe(200);
    at(20);
    await job('r-plain', 'retry');
    at(21);
    await job('r-retried', 'retry', {
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 1 }] },
      priority: 2,
    });
    at(22);
    await rest('PUT', '/jobs/r-templated', { targets: ['thing/retry'], jobTemplateArn: 'prio-template' });
    at(23);
    await rest('PUT', '/jobs/r-overridden', {
      targets: ['thing/retry'],
      jobTemplateArn: 'prio-template',
      priority: 1,
    });
    expect(await queuedIds('retry')).toEqual(['r-templated', 'r-retried', 'r-overridden', 'r-plain']);
    expect((await rest('GET', '/jobs/r-templated')).body.job).toMatchObject({ priority: 9 });

    at(24);
    await deviceRequest(device, `${root('retry')}/r-retried/update`, { status: 'FAILED' });
    const retried = await rest('GET', '/things/retry/jobs/r-retried');
    expect(retried.body.execution).toMatchObject({ executionNumber: 2, status: 'QUEUED' });
    expect(await queuedIds('retry')).toEqual(['r-templated', 'r-retried', 'r-overridden', 'r-plain']);
  });

  it('refuses a priority out of range or not an integer with a 400 naming the field', async () => {
    for (const priority of [1001, -1001, 1.5, '3']) {
      const res = await job('bad-prio', 'plain', { priority });
      expect(res.status).toBe(400);
      expect(String(res.body.message)).toContain('priority');
    }
    expect((await rest('GET', '/jobs/bad-prio')).status).toBe(404);
  });
});
