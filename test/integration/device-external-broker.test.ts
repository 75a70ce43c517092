import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, recordMessages, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

/** The Mosquitto the suite runs beside (CI starts it), with anonymous access on loopback. */
const MOSQUITTO_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
/** The same broker with credentials in the URL (an anonymous Mosquitto accepts any), which no log may show. */
const WITH_CREDENTIALS = (() => {
  const u = new URL(MOSQUITTO_URL);
  if (u.username === '') [u.username, u.password] = ['fleetjobs-ops', 'not-in-logs'];
  return u.toString();
})();

describe('external-broker mode (MQTT_URL) against Mosquitto', () => {
  let t: TestDb;
  const instances: FleetJobs[] = [];
  let device: MqttClient;
  // A root of this run's own, so parallel runs on the shared Mosquitto never see each other's topics.
  const prefix = `fjtest-${randomBytes(4).toString('hex')}`;
  const root = `${prefix}/things/ext/jobs`;
  const logLines: string[] = [];

  beforeAll(async () => {
    t = await createTestDb('postgres');
    await insertThings(t.db, ['ext'], new Date());
    for (let i = 0; i < 2; i++) {
      instances.push(
        await startTestServer({
          db: t.db,
          config: {
            mqttUrl: i === 0 ? WITH_CREDENTIALS : MOSQUITTO_URL,
            jobsTopicRoot: `${prefix}/things/{thingName}/jobs`,
          },
          ...(i === 0
            ? { logger: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }) }
            : {}),
        }),
      );
    }
    device = await connectDevice(MOSQUITTO_URL, { clientId: `${prefix}-ext` });
    // Through an external broker replies are ordinary publishes: the device subscribes to them, as on AWS.
    await device.subscribeAsync([`${root}/+/+/+`, `${root}/+/+`, `${root}/notify`, `${root}/notify-next`], {
      qos: 1,
    });
  });
  afterAll(async () => {
    await device?.endAsync();
    for (const app of instances) await app.close();
    await t?.close();
  });

  it('runs no embedded broker and serves a device through the external one, each request answered once', async () => {
    expect(instances.map((a) => a.addresses.mqtt)).toEqual(['', '']);
    const startLine = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'fleetjobs started');
    // The start line names the broker it uses, since no embedded listener has an address, without credentials.
    const bare = new URL(WITH_CREDENTIALS);
    [bare.username, bare.password] = ['', ''];
    expect(startLine?.mqttUrl).toBe(bare.toString());
    expect(logLines.join('\n')).not.toContain(new URL(WITH_CREDENTIALS).password);
    const announced = waitForMessage(device, `${root}/notify-next`);
    await createJob(instances[0]!.deps, {
      jobId: 'ext-job',
      targets: ['thing/ext'],
      document: JSON.stringify({ operation: 'external' }),
    });
    expect((await announced).json.execution).toMatchObject({ jobId: 'ext-job', status: 'QUEUED' });

    const replies = recordMessages(device, `${root}/get/+`);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => deviceRequest(device, `${root}/get`, { clientToken: `g${i}` })),
    );
    expect(answers.every((a) => a.json.queuedJobs[0]?.jobId === 'ext-job')).toBe(true);

    const started = await deviceRequest(device, `${root}/start-next`, { clientToken: 'start' });
    expect(started.json.execution).toMatchObject({ jobId: 'ext-job', status: 'IN_PROGRESS' });
    const emptied = waitForMessage(device, `${root}/notify-next`, (m) => m.json.execution === undefined);
    const done = await deviceRequest(device, `${root}/ext-job/update`, {
      status: 'SUCCEEDED',
      clientToken: 'done',
    });
    expect(done.outcome).toBe('accepted');
    await emptied;
    // Every get was answered exactly once although two instances share the subscription.
    const tokens = replies.map((r) => r.json.clientToken as string).sort();
    expect(tokens).toEqual(Array.from({ length: 20 }, (_, i) => `g${i}`).sort());
    const job = await t.db.query(`SELECT status FROM jobs WHERE job_id = 'ext-job'`);
    expect(job).toEqual([{ status: 'COMPLETED' }]);
  });
});

describe('external-broker mode without a shared subscription (MQTT_URL ?share=none)', () => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  // A $ root as $aws is (Mosquitto 2.0 skips $-topics in shared subscriptions, so one instance subscribes
  // plainly), of this run's own: a plain subscription on $aws/things/+ would also answer other files' devices.
  const thing = `ext-${randomBytes(4).toString('hex')}`;
  const prefix = `$fjtest-${randomBytes(4).toString('hex')}`;
  const root = `${prefix}/things/${thing}/jobs`;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    await insertThings(t.db, [thing], new Date());
    app = await startTestServer({
      db: t.db,
      config: { mqttUrl: `${MOSQUITTO_URL}?share=none`, jobsTopicRoot: `${prefix}/things/{thingName}/jobs` },
    });
    device = await connectDevice(MOSQUITTO_URL, { clientId: thing });
    await device.subscribeAsync(`${root}/#`, { qos: 1 });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('answers requests on a $ root, which Mosquitto never gives to $share', async () => {
    await createJob(app.deps, { jobId: 'aws-root', targets: [`thing/${thing}`], document: '{"op":"x"}' });
    const started = await deviceRequest(device, `${root}/start-next`, { clientToken: 's' });
    expect(started.json).toMatchObject({
      clientToken: 's',
      execution: { jobId: 'aws-root', status: 'IN_PROGRESS' },
    });
  });
});
