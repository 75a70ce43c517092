import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';

describe.each(BACKENDS)('a job created over REST and run by an MQTT device on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  const rest = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db });
    device = await connectDevice(app.addresses.mqtt, { clientId: 'rest-device' });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('goes from PUT /jobs to SUCCEEDED over MQTT and the job to COMPLETED', async () => {
    expect((await rest('POST', '/things/rest-device')).status).toBe(200);
    await device.subscribeAsync('$aws/things/rest-device/jobs/notify-next', { qos: 1 });
    const announced = waitForMessage(device, '$aws/things/rest-device/jobs/notify-next');
    const created = await rest('PUT', '/jobs/rest-job', {
      targets: ['arn:aws:iot:local:000000000000:thing/rest-device'],
      document: JSON.stringify({ operation: 'reboot' }),
    });
    expect(created.status).toBe(200);
    expect((await announced).json.execution).toMatchObject({
      jobId: 'rest-job',
      jobDocument: { operation: 'reboot' },
    });

    const root = '$aws/things/rest-device/jobs';
    const started = await deviceRequest(device, `${root}/start-next`, {
      statusDetails: { phase: 'rebooting' },
    });
    expect(started.json.execution).toMatchObject({
      jobId: 'rest-job',
      status: 'IN_PROGRESS',
      versionNumber: 2,
    });
    const done = await deviceRequest(device, `${root}/rest-job/update`, {
      status: 'SUCCEEDED',
      expectedVersion: 2,
      includeJobExecutionState: true,
    });
    expect(done.json.executionState).toEqual({
      status: 'SUCCEEDED',
      statusDetails: { phase: 'rebooting' },
      versionNumber: 3,
    });

    const job = await rest('GET', '/jobs/rest-job');
    expect(job.body.job).toMatchObject({ jobId: 'rest-job', status: 'COMPLETED' });
    const execution = await rest('GET', '/things/rest-device/jobs/rest-job');
    expect(execution.body.execution).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });
  });
});
