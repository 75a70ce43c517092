import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { iotjobs, mqtt5 } from 'aws-iot-device-sdk-v2';
import { pino } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

/** The Mosquitto 2 the suite runs beside: an MQTT 5 broker. */
const MOSQUITTO_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

/** An SDK MQTT 5 client as a device makes it; resolves once connected, rejects with the connection failure. */
async function connect5(
  url: string,
  clientId: string,
): Promise<{ client: mqtt5.Mqtt5Client; failure?: mqtt5.ConnectionFailureEvent }> {
  const u = new URL(url);
  const client = new mqtt5.Mqtt5Client({
    hostName: u.hostname,
    port: Number(u.port),
    connectProperties: { clientId, keepAliveIntervalSeconds: 30 },
    // One attempt: a refusal is the result, not something to retry.
    retryJitterMode: mqtt5.RetryJitterType.None,
    minReconnectDelayMs: 60_000,
    maxReconnectDelayMs: 60_000,
  });
  const outcome = new Promise<mqtt5.ConnectionFailureEvent | undefined>((resolve) => {
    client.once('connectionSuccess', () => resolve(undefined));
    client.once('connectionFailure', (e) => resolve(e));
  });
  client.start();
  const failure = await outcome;
  return failure === undefined ? { client } : { client, failure };
}

async function stop(client: mqtt5.Mqtt5Client): Promise<void> {
  const stopped = new Promise<void>((resolve) => client.once('stopped', () => resolve()));
  client.stop();
  await stopped;
  client.close();
}

/**
 * [issue 18] aws-iot-device-sdk-v2's MQTT 5 client, unmodified. The embedded broker (Aedes 1.x, MQTT 3.1.1)
 * refuses it with an MQTT 5 CONNACK the SDK reads as "unsupported protocol version"; through an MQTT 5 broker
 * (Mosquitto 2, MQTT_URL with ?share=none) it runs a job end to end with IotJobsClientv2.
 */
describe('aws-iot-device-sdk-v2 MQTT 5 client', () => {
  let t: TestDb;
  const opened: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    t = await createTestDb('postgres');
  });
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
    await t?.close();
  });

  it('is refused by the embedded broker with reason 0x84 (unsupported protocol version) and one log line', async () => {
    const lines: { msg: string; clientId?: string }[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => lines.push(JSON.parse(line) as { msg: string; clientId?: string }) },
    );
    const app = await createFleetJobs({
      config: loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off', LOG_LEVEL: 'warn' }),
      db: t.db,
      logger,
    });
    opened.push(app);
    await app.start();
    const { client, failure } = await connect5(app.addresses.mqtt, 'v5-refused');
    await stop(client);
    expect(failure?.connack?.reasonCode).toBe(mqtt5.ConnectReasonCode.UnsupportedProtocolVersion);
    expect(failure?.error.toString()).toContain('AWS_ERROR_MQTT5_CONNACK_CONNECTION_REFUSED');
    const refusals = lines.filter((l) => l.msg.startsWith('MQTT 5 CONNECT refused'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ clientId: 'v5-refused' });
    expect(refusals[0]?.msg).toContain('MQTT_URL');
  });

  it('runs a job end to end with IotJobsClientv2 through Mosquitto (MQTT_URL ?share=none)', async () => {
    const thingName = `v5-${randomBytes(4).toString('hex')}`;
    await insertThings(t.db, [thingName], new Date());
    const app: FleetJobs = await startTestServer({
      db: t.db,
      config: { mqttUrl: `${MOSQUITTO_URL}?share=none` },
    });
    opened.push(app);
    const { client, failure } = await connect5(MOSQUITTO_URL, thingName);
    expect(failure).toBeUndefined();
    const jobs = iotjobs.IotJobsClientv2.newFromMqtt5(client, {
      maxRequestResponseSubscriptions: 4,
      maxStreamingSubscriptions: 2,
      operationTimeoutInSeconds: 10,
    });
    try {
      const stream = jobs.createNextJobExecutionChangedStream({ thingName });
      const subscribed = new Promise<void>((resolve) =>
        stream.on('subscriptionStatus', (e) => {
          if (e.type === 0) resolve();
        }),
      );
      const announced = new Promise<iotjobs.model.NextJobExecutionChangedEvent>((resolve) =>
        stream.on('incomingPublish', (e) => resolve(e.message)),
      );
      stream.open();
      await subscribed;
      await createJob(app.deps, {
        jobId: 'v5-job',
        targets: [`thing/${thingName}`],
        document: JSON.stringify({ operation: 'reboot' }),
      });
      expect((await announced).execution).toMatchObject({ jobId: 'v5-job', status: 'QUEUED' });

      const pending = await jobs.getPendingJobExecutions({ thingName });
      expect(pending.queuedJobs?.map((j) => j.jobId)).toEqual(['v5-job']);
      const started = await jobs.startNextPendingJobExecution({ thingName });
      expect(started.execution).toMatchObject({
        jobId: 'v5-job',
        status: 'IN_PROGRESS',
        versionNumber: 2,
        jobDocument: { operation: 'reboot' },
      });
      const updated = await jobs.updateJobExecution({
        thingName,
        jobId: 'v5-job',
        status: iotjobs.model.JobStatus.SUCCEEDED,
        expectedVersion: 2,
        includeJobExecutionState: true,
      });
      expect(updated.executionState).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });
      stream.close();
    } finally {
      jobs.close();
      await stop(client);
    }
    const rows = await t.db.query(`SELECT status FROM job_executions WHERE thing_name = $1`, [thingName]);
    expect(rows).toEqual([{ status: 'SUCCEEDED' }]);
  });
});
