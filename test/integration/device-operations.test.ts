import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import { pino } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { Db, Queryable } from '../../src/store/db.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

const T0 = 1_767_225_600;

/** A Db whose every statement fails while `failing` is set: a store outage on demand. */
function breakableDb(db: Db): { db: Db; setFailing(v: boolean): void } {
  let failing = false;
  const guard = <Q extends Queryable>(q: Q): Q => ({
    ...q,
    query: (text: string, params?: readonly unknown[]) =>
      failing ? Promise.reject(new Error('connection terminated')) : q.query(text, params),
  });
  return {
    db: {
      ...guard(db),
      kind: db.kind,
      transaction: (fn) => db.transaction((tx) => fn(guard(tx))),
      close: () => db.close(),
    },
    setFailing: (v) => (failing = v),
  };
}

describe.each(BACKENDS)('device MQTT operations on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  let now = new Date(T0 * 1000);
  const at = (s: number) => (now = new Date((T0 + s) * 1000));
  const rootOf = (thing: string) => `$aws/things/${thing}/jobs`;
  const job = (jobId: string, thing: string, extra: object = {}) =>
    createJob(app.deps, {
      jobId,
      targets: [`thing/${thing}`],
      document: JSON.stringify({ op: jobId }),
      ...extra,
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(t.db, ['ops', 'lists', 'timers', 'errs', 'describe'], now);
    app = await startTestServer({ db: t.db, clock: () => now });
    device = await connectDevice(app.addresses.mqtt, { clientId: 'ops-device' });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('GetPendingJobExecutions lists IN_PROGRESS and QUEUED executions in queue order, at most 10', async () => {
    const r = rootOf('lists');
    const empty = await deviceRequest(device, `${r}/get`, {});
    expect(empty.json).toEqual({ timestamp: T0, inProgressJobs: [], queuedJobs: [] });
    for (let i = 0; i < 12; i++) {
      at(i);
      await job(`list-${String(i).padStart(2, '0')}`, 'lists');
    }
    at(20);
    await deviceRequest(device, `${r}/list-05/update`, { status: 'IN_PROGRESS' });
    const got = await deviceRequest(device, `${r}/get`, {
      clientToken: 'g',
      thingName: 'ignored',
      extra: [1],
    });
    expect(got.outcome).toBe('accepted');
    expect(got.json.clientToken).toBe('g');
    expect(got.json.inProgressJobs).toEqual([
      {
        jobId: 'list-05',
        queuedAt: T0 + 5,
        startedAt: T0 + 20,
        lastUpdatedAt: T0 + 20,
        versionNumber: 2,
        executionNumber: 1,
      },
    ]);
    expect(got.json.queuedJobs.map((j: { jobId: string }) => j.jobId)).toEqual([
      'list-00',
      'list-01',
      'list-02',
      'list-03',
      'list-04',
      'list-06',
      'list-07',
      'list-08',
      'list-09',
    ]);
  });

  it('StartNext sets statusDetails and a step timer that never outlives the in-progress timeout', async () => {
    const r = rootOf('timers');
    at(100);
    await job('timed', 'timers', { timeoutConfig: { inProgressTimeoutInMinutes: 10 } });
    const started = await deviceRequest(device, `${r}/start-next`, {
      statusDetails: { step: 'download' },
      stepTimeoutInMinutes: 30,
    });
    expect(started.json.execution).toEqual({
      jobId: 'timed',
      status: 'IN_PROGRESS',
      statusDetails: { step: 'download' },
      queuedAt: T0 + 100,
      startedAt: T0 + 100,
      lastUpdatedAt: T0 + 100,
      versionNumber: 2,
      executionNumber: 1,
      approximateSecondsBeforeTimedOut: 600,
      jobDocument: { op: 'timed' },
    });
    // Calling it again returns the same IN_PROGRESS execution unchanged.
    const again = await deviceRequest(device, `${r}/start-next`, { statusDetails: { step: 'other' } });
    expect(again.json.execution).toMatchObject({
      jobId: 'timed',
      versionNumber: 2,
      statusDetails: { step: 'download' },
    });

    at(160);
    const stepped = await deviceRequest(device, `${r}/timed/update`, {
      status: 'IN_PROGRESS',
      stepTimeoutInMinutes: 2,
      includeJobExecutionState: true,
    });
    expect(stepped.json).toEqual({
      timestamp: T0 + 160,
      executionState: { status: 'IN_PROGRESS', statusDetails: { step: 'download' }, versionNumber: 3 },
    });
    let rows = await t.db.query<{ stepDeadline: Date | null; timeoutAt: Date | null }>(
      `SELECT step_deadline, timeout_at FROM job_executions WHERE job_id = 'timed'`,
    );
    expect(rows[0]?.timeoutAt?.getTime()).toBe((T0 + 160 + 120) * 1000);

    const cleared = await deviceRequest(device, `${r}/timed/update`, {
      status: 'IN_PROGRESS',
      stepTimeoutInMinutes: -1,
    });
    expect(cleared.outcome).toBe('accepted');
    rows = await t.db.query(`SELECT step_deadline, timeout_at FROM job_executions WHERE job_id = 'timed'`);
    expect(rows[0]?.stepDeadline).toBeNull();
    expect(rows[0]?.timeoutAt?.getTime()).toBe((T0 + 100 + 600) * 1000);
  });

  it('DescribeJobExecution answers $next, an explicit jobId, an executionNumber and includeJobDocument', async () => {
    const r = rootOf('describe');
    const none = await deviceRequest(device, `${r}/$next/get`, { clientToken: 'n' });
    expect(none.topic).toBe(`${r}/$next/get/accepted`);
    expect(none.json).toEqual({ clientToken: 'n', timestamp: now.getTime() / 1000 });
    at(200);
    await job('d1', 'describe');
    const next = await deviceRequest(device, `${r}/$next/get`, {});
    expect(next.json.execution).toEqual({
      jobId: 'd1',
      status: 'QUEUED',
      queuedAt: T0 + 200,
      lastUpdatedAt: T0 + 200,
      versionNumber: 1,
      executionNumber: 1,
      jobDocument: { op: 'd1' },
    });
    const explicit = await deviceRequest(device, `${r}/d1/get`, {
      executionNumber: 1,
      includeJobDocument: false,
    });
    expect(explicit.json.execution).toEqual({
      jobId: 'd1',
      status: 'QUEUED',
      queuedAt: T0 + 200,
      lastUpdatedAt: T0 + 200,
      versionNumber: 1,
      executionNumber: 1,
    });
    const missing = await deviceRequest(device, `${r}/d1/get`, { executionNumber: 2, clientToken: 'm' });
    expect(missing.json).toMatchObject({ code: 'ResourceNotFound', clientToken: 'm' });
  });

  it('UpdateJobExecution honours expectedVersion (number or string), executionNumber and includeJobDocument', async () => {
    const r = rootOf('ops');
    at(300);
    await job('u1', 'ops');
    const direct = await deviceRequest(device, `${r}/u1/update`, {
      status: 'SUCCEEDED',
      expectedVersion: '1',
      executionNumber: 1,
      statusDetails: { result: 'ok' },
      includeJobDocument: true,
      includeJobExecutionState: true,
      clientToken: 'u',
    });
    expect(direct.json).toEqual({
      clientToken: 'u',
      timestamp: T0 + 300,
      executionState: { status: 'SUCCEEDED', statusDetails: { result: 'ok' }, versionNumber: 2 },
      jobDocument: { op: 'u1' },
    });
    const rows = await t.db.query<{ status: string }>(`SELECT status FROM jobs WHERE job_id = 'u1'`);
    expect(rows[0]?.status).toBe('COMPLETED');
  });

  it('answers every error code with a rejected reply and changes nothing', async () => {
    const r = rootOf('errs');
    at(400);
    await job('e1', 'errs');
    await job('e2', 'errs');
    const before = await t.db.query(
      `SELECT job_id, status, version_number FROM job_executions WHERE thing_name = 'errs' ORDER BY job_id`,
    );
    const rejected = async (topic: string, payload: object | string | Buffer) => {
      const reply = await deviceRequest(device, topic, payload);
      expect(reply.topic).toBe(`${topic}/rejected`);
      expect(reply.json.timestamp).toBe(T0 + 400);
      return reply.json;
    };

    expect(await rejected(`${r}/nonsense`, {})).toMatchObject({ code: 'InvalidTopic' });
    expect(await rejected(`${r}/bad.id/update`, {})).toMatchObject({ code: 'InvalidTopic' });
    expect(await rejected(`${r}/e1/update`, 'not json')).toMatchObject({ code: 'InvalidJson' });
    expect(await rejected(`${r}/e1/update`, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toMatchObject({
      code: 'InvalidJson',
    });
    expect(await rejected(`${r}/e1/update`, '[1,2]')).toMatchObject({ code: 'InvalidJson' });
    expect(await rejected(`${r}/e1/update`, { clientToken: 'c' })).toEqual({
      code: 'InvalidRequest',
      message: "Value null at 'status' failed to satisfy constraint: Member must not be null",
      clientToken: 'c',
      timestamp: T0 + 400,
    });
    expect(await rejected(`${r}/e1/update`, { status: 'CANCELED' })).toMatchObject({
      code: 'InvalidRequest',
    });
    expect(
      await rejected(`${r}/e1/update`, { status: 'IN_PROGRESS', statusDetails: { k: 'a\u0007b' } }),
    ).toMatchObject({ code: 'InvalidRequest' });
    expect(await rejected(`${r}/e1/update`, { status: 'IN_PROGRESS', executionNumber: 'one' })).toMatchObject(
      { code: 'InvalidRequest' },
    );
    expect(
      await rejected(`${r}/e1/update`, { status: 'IN_PROGRESS', stepTimeoutInMinutes: 0 }),
    ).toMatchObject({ code: 'InvalidRequest' });
    expect(
      await rejected(`${r}/e1/update`, { status: 'IN_PROGRESS', pad: 'x'.repeat(131_100) }),
    ).toMatchObject({ code: 'InvalidRequest' });
    expect(await rejected(`${r}/start-next`, { stepTimeoutInMinutes: -1 })).toMatchObject({
      code: 'InvalidRequest',
    });
    expect(await rejected(`${r}/nojob/update`, { status: 'IN_PROGRESS' })).toMatchObject({
      code: 'ResourceNotFound',
    });
    expect(await rejected(`${r}/nojob/get`, {})).toMatchObject({ code: 'ResourceNotFound' });
    expect(
      await rejected(`${r}/e1/update`, { status: 'IN_PROGRESS', expectedVersion: 7, clientToken: 'v' }),
    ).toEqual({
      code: 'VersionMismatch',
      message: expect.any(String),
      clientToken: 'v',
      timestamp: T0 + 400,
      executionState: { status: 'QUEUED', versionNumber: 1 },
    });
    const after = await t.db.query(
      `SELECT job_id, status, version_number FROM job_executions WHERE thing_name = 'errs' ORDER BY job_id`,
    );
    expect(after).toEqual(before);

    await deviceRequest(device, `${r}/e2/update`, {
      status: 'REJECTED',
      statusDetails: { why: 'bad document' },
    });
    expect(await rejected(`${r}/e2/update`, { status: 'IN_PROGRESS' })).toMatchObject({
      code: 'InvalidStateTransition',
      executionState: { status: 'REJECTED', statusDetails: { why: 'bad document' }, versionNumber: 2 },
    });
    expect(await rejected(`${r}/e2/get`, {})).toMatchObject({ code: 'TerminalStateReached' });

    // The device stayed connected through all of it and is still served.
    expect(device.connected).toBe(true);
    const ok = await deviceRequest(device, `${r}/get`, {});
    expect(ok.json.queuedJobs.map((j: { jobId: string }) => j.jobId)).toEqual(['e1']);
  });

  it('answers InternalError while the store fails and RequestThrottled beyond the rate limit, and keeps serving', async () => {
    const breakable = breakableDb(t.db);
    const other = await createFleetJobs({
      config: loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off', LOG_LEVEL: 'silent' }),
      db: breakable.db,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      clock: () => now,
      deviceRateLimit: { perSecond: 0.001, burst: 3 },
    });
    await other.start();
    const client = await connectDevice(other.addresses.mqtt);
    try {
      const r = rootOf('errs');
      breakable.setFailing(true);
      const failed = await deviceRequest(client, `${r}/start-next`, { clientToken: 'i' });
      expect(failed.json).toEqual({
        code: 'InternalError',
        message: 'An internal error occurred; retry, and report it if it persists.',
        clientToken: 'i',
        timestamp: T0 + 400,
      });
      breakable.setFailing(false);
      const served = await deviceRequest(client, `${r}/get`, {});
      expect(served.outcome).toBe('accepted');
      await deviceRequest(client, `${r}/get`, {});
      const throttled = await deviceRequest(client, `${r}/get`, { clientToken: 't' });
      expect(throttled.json).toMatchObject({ code: 'RequestThrottled', clientToken: 't' });
      // Another thing has a bucket of its own.
      expect((await deviceRequest(client, `${rootOf('ops')}/get`, {})).outcome).toBe('accepted');
    } finally {
      await client.endAsync();
      await other.close();
    }
  });
});
