import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, iot, iotjobs, mqtt } from 'aws-iot-device-sdk-v2';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createTestCa, type TestCa, writeServerTls } from '../helpers/certs.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

type Transport = 'tcp' | 'mtls';

/**
 * The unmodified AWS IoT Device SDK v2 (aws-crt, MQTT 3.1.1): the IotJobsClientv2 request-response client and
 * the classic IotJobsClient, over plain TCP and over mTLS, only the endpoint, port and CA changed.
 */
describe.each<Transport>(['tcp', 'mtls'])('aws-iot-device-sdk-v2 jobs clients over %s', (transport) => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let ca: TestCa;
  const things = { rr: `v2-rr-${transport}`, classic: `v2-classic-${transport}` };

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-v2-'));
    ca = createTestCa('fleetjobs v2 test CA');
    const server = ca.issue('localhost', { server: true });
    const tls = await writeServerTls(dir, ca, server);
    await insertThings(t.db, Object.values(things), new Date());
    app = await startTestServer({
      db: t.db,
      config: {
        mqttsPort: 0,
        ...tls,
      },
    });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** An SDK MQTT 3.1.1 connection as a device would make it; over mTLS the certificate CN is the thing. */
  const connection = (thingName: string): mqtt.MqttClientConnection => {
    const client = new mqtt.MqttClient();
    if (transport === 'tcp') {
      const url = new URL(app.addresses.mqtt);
      return client.new_connection({
        client_id: thingName,
        host_name: url.hostname,
        port: Number(url.port),
        clean_session: true,
        keep_alive: 30,
        socket_options: new io.SocketOptions(),
      });
    }
    const url = new URL(app.addresses.mqtts as string);
    const cert = ca.issue(thingName);
    const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(cert.cert, cert.key)
      .with_certificate_authority(ca.cert)
      .with_endpoint(url.hostname)
      .with_port(Number(url.port))
      .with_client_id(thingName)
      .with_clean_session(true)
      .build();
    return client.new_connection(config);
  };

  it('IotJobsClientv2 starts, describes and completes executions and streams notify-next', async () => {
    const thingName = things.rr;
    const conn = connection(thingName);
    await conn.connect();
    const jobs = iotjobs.IotJobsClientv2.newFromMqtt311(conn, {
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
      const nextEvents: iotjobs.model.NextJobExecutionChangedEvent[] = [];
      const firstEvent = new Promise<void>((resolve) =>
        stream.on('incomingPublish', (e) => {
          nextEvents.push(e.message);
          resolve();
        }),
      );
      stream.open();
      await subscribed;

      await createJob(app.deps, {
        jobId: 'rr-job',
        targets: [`thing/${thingName}`],
        document: JSON.stringify({ operation: 'reboot' }),
      });
      await firstEvent;
      expect(nextEvents[0]?.execution).toMatchObject({
        jobId: 'rr-job',
        status: 'QUEUED',
        executionNumber: 1,
      });

      const pending = await jobs.getPendingJobExecutions({ thingName });
      expect(pending.queuedJobs?.map((j) => j.jobId)).toEqual(['rr-job']);
      expect(pending.inProgressJobs).toEqual([]);

      const started = await jobs.startNextPendingJobExecution({ thingName, stepTimeoutInMinutes: 5 });
      expect(started.execution).toMatchObject({
        jobId: 'rr-job',
        status: 'IN_PROGRESS',
        versionNumber: 2,
        jobDocument: { operation: 'reboot' },
      });
      const described = await jobs.describeJobExecution({ thingName, jobId: '$next' });
      expect(described.execution).toMatchObject({ jobId: 'rr-job', status: 'IN_PROGRESS' });

      const updated = await jobs.updateJobExecution({
        thingName,
        jobId: 'rr-job',
        status: iotjobs.model.JobStatus.SUCCEEDED,
        expectedVersion: 2,
        includeJobExecutionState: true,
      });
      expect(updated.executionState).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });

      const missing = await jobs
        .updateJobExecution({ thingName, jobId: 'no-such-job', status: iotjobs.model.JobStatus.FAILED })
        .catch((e: unknown) => e as { modeledError?: { code?: string } });
      expect((missing as { modeledError?: { code?: string } }).modeledError?.code).toBe('ResourceNotFound');

      const empty = await jobs.startNextPendingJobExecution({ thingName });
      expect(empty.execution).toBeUndefined();
      stream.close();
    } finally {
      jobs.close();
      await conn.disconnect();
    }
    const rows = await t.db.query(`SELECT status FROM job_executions WHERE thing_name = $1`, [thingName]);
    expect(rows).toEqual([{ status: 'SUCCEEDED' }]);
  });

  it('the classic IotJobsClient takes a job through start-next and update with its own subscriptions', async () => {
    const thingName = things.classic;
    const conn = connection(thingName);
    await conn.connect();
    const jobs = new iotjobs.IotJobsClient(conn);
    const QOS = mqtt.QoS.AtLeastOnce;
    try {
      const next = new Promise<iotjobs.model.NextJobExecutionChangedEvent>((resolve, reject) =>
        jobs
          .subscribeToNextJobExecutionChangedEvents({ thingName }, QOS, (err, ev) =>
            err ? reject(err) : resolve(ev!),
          )
          .catch(reject),
      );
      const startAccepted = new Promise<iotjobs.model.StartNextJobExecutionResponse>((resolve, reject) =>
        jobs
          .subscribeToStartNextPendingJobExecutionAccepted({ thingName }, QOS, (err, r) =>
            err ? reject(err) : resolve(r!),
          )
          .catch(reject),
      );
      const updateAccepted = new Promise<iotjobs.model.UpdateJobExecutionResponse>((resolve, reject) =>
        jobs
          .subscribeToUpdateJobExecutionAccepted({ thingName, jobId: 'classic-job' }, QOS, (err, r) =>
            err ? reject(err) : resolve(r!),
          )
          .catch(reject),
      );
      const updateRejected = new Promise<iotjobs.model.RejectedErrorResponse>((resolve, reject) =>
        jobs
          .subscribeToUpdateJobExecutionRejected({ thingName, jobId: 'classic-job' }, QOS, (err, r) =>
            err ? reject(err) : resolve(r!),
          )
          .catch(reject),
      );
      // Subscriptions are acknowledged before the job exists, so notify-next cannot be missed.
      await jobs.subscribeToJobExecutionsChangedEvents({ thingName }, QOS, () => undefined);

      await createJob(app.deps, {
        jobId: 'classic-job',
        targets: [`thing/${thingName}`],
        document: JSON.stringify({ operation: 'install', version: '1.2.3' }),
      });
      expect((await next).execution).toMatchObject({ jobId: 'classic-job', status: 'QUEUED' });

      await jobs.publishStartNextPendingJobExecution({ thingName, clientToken: 'classic-start' }, QOS);
      const started = await startAccepted;
      expect(started.clientToken).toBe('classic-start');
      expect(started.execution).toMatchObject({
        jobId: 'classic-job',
        status: 'IN_PROGRESS',
        jobDocument: { operation: 'install', version: '1.2.3' },
      });

      await jobs.publishUpdateJobExecution(
        { thingName, jobId: 'classic-job', status: iotjobs.model.JobStatus.SUCCEEDED, expectedVersion: 1 },
        QOS,
      );
      expect(await updateRejected).toMatchObject({
        code: 'VersionMismatch',
        executionState: { versionNumber: 2 },
      });
      await jobs.publishUpdateJobExecution(
        {
          thingName,
          jobId: 'classic-job',
          status: iotjobs.model.JobStatus.SUCCEEDED,
          expectedVersion: 2,
          statusDetails: { installed: '1.2.3' },
          clientToken: 'classic-done',
        },
        QOS,
      );
      expect((await updateAccepted).clientToken).toBe('classic-done');
    } finally {
      await conn.disconnect();
    }
    const rows = await t.db.query(`SELECT status, status_details FROM job_executions WHERE thing_name = $1`, [
      thingName,
    ]);
    expect(rows).toEqual([{ status: 'SUCCEEDED', statusDetails: { installed: '1.2.3' } }]);
  });
});
