import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, recordMessages, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z
const root = '$aws/things/w1/jobs';

describe.each(BACKENDS)('the AWS worked sequence over MQTT on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  let now = new Date(T0 * 1000);
  const at = (s: number) => (now = new Date((T0 + s) * 1000));

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(t.db, ['w1'], now);
    app = await startTestServer({ db: t.db, clock: () => now });
    device = await connectDevice(app.addresses.mqtt, { clientId: 'w1' });
    await device.subscribeAsync([`${root}/notify`, `${root}/notify-next`], { qos: 1 });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('publishes notify and notify-next exactly as AWS does, replies before the events they cause', async () => {
    const seen = recordMessages(device, `${root}/#`);
    const doc1 = { ToDo: 'Reboot' };
    const doc2 = { ToDo: 'Update', version: '2.0' };

    // 1. CreateJob job1: notify with one QUEUED entry and notify-next naming it.
    at(0);
    let next = waitForMessage(device, `${root}/notify-next`);
    await createJob(app.deps, { jobId: 'job1', targets: ['thing/w1'], document: JSON.stringify(doc1) });
    expect((await next).json).toEqual({
      timestamp: T0,
      execution: {
        jobId: 'job1',
        status: 'QUEUED',
        queuedAt: T0,
        lastUpdatedAt: T0,
        versionNumber: 1,
        executionNumber: 1,
        jobDocument: doc1,
      },
    });

    // 2. CreateJob job2: notify only (the head did not change).
    at(1);
    let notify = waitForMessage(device, `${root}/notify`, (m) => m.json.jobs.QUEUED?.length === 2);
    await createJob(app.deps, { jobId: 'job2', targets: ['thing/w1'], document: JSON.stringify(doc2) });
    expect((await notify).json).toEqual({
      timestamp: T0 + 1,
      jobs: {
        QUEUED: [
          { jobId: 'job1', queuedAt: T0, lastUpdatedAt: T0, versionNumber: 1, executionNumber: 1 },
          { jobId: 'job2', queuedAt: T0 + 1, lastUpdatedAt: T0 + 1, versionNumber: 1, executionNumber: 1 },
        ],
      },
    });

    // 3. start-next: job1 IN_PROGRESS, version 2; no event.
    at(2);
    const started = await deviceRequest(device, `${root}/start-next`, { clientToken: 'tok-1' });
    expect(started.topic).toBe(`${root}/start-next/accepted`);
    expect(started.json).toEqual({
      clientToken: 'tok-1',
      timestamp: T0 + 2,
      execution: {
        jobId: 'job1',
        status: 'IN_PROGRESS',
        queuedAt: T0,
        startedAt: T0 + 2,
        lastUpdatedAt: T0 + 2,
        versionNumber: 2,
        executionNumber: 1,
        jobDocument: doc1,
      },
    });

    // 4. job1 SUCCEEDED: reply, then notify {QUEUED:[job2]} and notify-next naming job2.
    at(3);
    notify = waitForMessage(device, `${root}/notify`);
    next = waitForMessage(device, `${root}/notify-next`);
    const done1 = await deviceRequest(device, `${root}/job1/update`, {
      status: 'SUCCEEDED',
      expectedVersion: 2,
      clientToken: 'tok-2',
    });
    expect(done1.json).toEqual({ clientToken: 'tok-2', timestamp: T0 + 3 });
    expect((await notify).json).toEqual({
      timestamp: T0 + 3,
      jobs: {
        QUEUED: [
          { jobId: 'job2', queuedAt: T0 + 1, lastUpdatedAt: T0 + 1, versionNumber: 1, executionNumber: 1 },
        ],
      },
    });
    expect((await next).json).toEqual({
      timestamp: T0 + 3,
      execution: {
        jobId: 'job2',
        status: 'QUEUED',
        queuedAt: T0 + 1,
        lastUpdatedAt: T0 + 1,
        versionNumber: 1,
        executionNumber: 1,
        jobDocument: doc2,
      },
    });

    // 5. start-next then FAILED: notify {jobs:{}} and notify-next {timestamp} alone.
    at(4);
    const started2 = await deviceRequest(device, `${root}/start-next`, {});
    expect(started2.json.execution).toMatchObject({ jobId: 'job2', status: 'IN_PROGRESS', versionNumber: 2 });
    expect(started2.json).not.toHaveProperty('clientToken');
    at(5);
    notify = waitForMessage(device, `${root}/notify`);
    next = waitForMessage(device, `${root}/notify-next`);
    await deviceRequest(device, `${root}/job2/update`, { status: 'FAILED', expectedVersion: '2' });
    expect((await notify).json).toEqual({ timestamp: T0 + 5, jobs: {} });
    expect((await next).json).toEqual({ timestamp: T0 + 5 });

    // The whole conversation, in the order the device saw it.
    expect(seen.map((m) => m.topic.slice(root.length + 1))).toEqual([
      'notify',
      'notify-next',
      'notify',
      'start-next/accepted',
      'job1/update/accepted',
      'notify',
      'notify-next',
      'start-next/accepted',
      'job2/update/accepted',
      'notify',
      'notify-next',
    ]);

    // Empty head: start-next and $next/get answer without an execution.
    const empty = await deviceRequest(device, `${root}/start-next`, { clientToken: 'e' });
    expect(empty.json).toEqual({ clientToken: 'e', timestamp: T0 + 5 });
    const job = await t.db.query<{ status: string }>(
      `SELECT status FROM jobs WHERE job_id IN ('job1', 'job2')`,
    );
    expect(job.map((j) => j.status)).toEqual(['COMPLETED', 'COMPLETED']);
  });
});
