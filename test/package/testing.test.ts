import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateJobCommand,
  CreateThingCommand,
  DescribeJobCommand,
  DescribeJobExecutionCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import { startFleetJobs, type RunningFleetJobs } from 'fleetjobs/testing';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';

/**
 * A user's test suite: the in-process double from `fleetjobs/testing` (resolved through package.json "exports"),
 * the unmodified AWS SDK as the operator, an MQTT.js device taking a job from notify-next to SUCCEEDED.
 */
describe.each(BACKENDS)('startFleetJobs from fleetjobs/testing on %s', (backend) => {
  let pg: TestDb | undefined;
  let fleet: RunningFleetJobs;
  let iot: IoTClient;

  beforeAll(async () => {
    if (backend === 'postgres') pg = await createTestDb('postgres');
    fleet = await startFleetJobs(pg ? { databaseUrl: `${pg.url}?search_path=${pg.schema}` } : {});
    iot = new IoTClient({ ...fleet.iot, maxAttempts: 1 });
  });
  afterAll(async () => {
    iot?.destroy();
    await fleet?.close();
    await pg?.close();
  });

  it('listens on free loopback ports and hands out an IoTClient config with dummy credentials', () => {
    expect(fleet.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(fleet.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fleet.iot).toMatchObject({ endpoint: fleet.httpUrl, region: 'local' });
  });

  it('drives a job created with the AWS SDK through a device from notify-next to SUCCEEDED', async () => {
    const { thingArn } = await iot.send(new CreateThingCommand({ thingName: 'sensor-1' }));
    const device = await fleet.device('sensor-1');

    await iot.send(
      new CreateJobCommand({ jobId: 'reboot-1', targets: [thingArn as string], document: '{"op":"reboot"}' }),
    );
    const notified = await device.nextMessage('notify-next');
    expect(notified.json).toMatchObject({ execution: { jobId: 'reboot-1', status: 'QUEUED' } });

    const started = await device.startNext({ statusDetails: { step: 'rebooting' } });
    expect(started.outcome).toBe('accepted');
    expect(started.body.execution).toMatchObject({
      jobId: 'reboot-1',
      status: 'IN_PROGRESS',
      versionNumber: 2,
      jobDocument: { op: 'reboot' },
    });

    const done = await device.update('reboot-1', { status: 'SUCCEEDED', expectedVersion: 2 });
    expect(done.outcome).toBe('accepted');

    const { execution } = await iot.send(
      new DescribeJobExecutionCommand({ jobId: 'reboot-1', thingName: 'sensor-1' }),
    );
    expect(execution).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });
    const { job } = await iot.send(new DescribeJobCommand({ jobId: 'reboot-1' }));
    expect(job?.status).toBe('COMPLETED');
    expect((await device.getPending()).body).toMatchObject({ inProgressJobs: [], queuedJobs: [] });
  });

  it('gives a device the rejected reply with its error code', async () => {
    const device = await fleet.device('sensor-2');
    const reply = await device.update('no-such-job', { status: 'SUCCEEDED' });
    expect(reply.outcome).toBe('rejected');
    expect(reply.body).toMatchObject({ code: 'ResourceNotFound', clientToken: expect.any(String) });
  });
});

describe('startFleetJobs settings', () => {
  it('rejects a bad setting with the ConfigError that names it, before opening anything', async () => {
    await expect(startFleetJobs({ settings: { AUTH_MODE: 'sometimes' } })).rejects.toThrow(
      /AUTH_MODE=sometimes is not valid/,
    );
  });
});
