import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import {
  CreateJobCommand,
  CreateThingCommand,
  DescribeJobExecutionCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import type { StartedFleetJobsContainer } from 'fleetjobs/testcontainers';

/**
 * [protocol §5] The image built from the Dockerfile, run through `fleetjobs/testcontainers` as a user's suite would.
 * Needs a Docker-compatible engine (DOCKER_HOST, e.g. `podman system service`; see docs/testing.md) and Node
 * >= 22.19 (testcontainers 12); skipped with one line otherwise. FLEETJOBS_TEST_IMAGE runs an image already built.
 */
async function whyNotRunnable(): Promise<string | undefined> {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 19)) {
    return `testcontainers 12 needs Node >= 22.19, this is ${process.versions.node}`;
  }
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return undefined;
  } catch {
    return 'no container engine reachable (start Docker or set DOCKER_HOST)';
  }
}

const skipped = await whyNotRunnable();
if (skipped !== undefined) console.log(`container test skipped: ${skipped}`);

describe.skipIf(skipped !== undefined)('the fleetjobs image through FleetJobsContainer', () => {
  let container: StartedFleetJobsContainer;
  let iot: IoTClient;

  beforeAll(async () => {
    const { GenericContainer } = await import('testcontainers');
    const { FleetJobsContainer } = await import('fleetjobs/testcontainers');
    let image = process.env.FLEETJOBS_TEST_IMAGE;
    if (image === undefined) {
      image = 'fleetjobs:test';
      await GenericContainer.fromDockerfile(process.cwd()).build(image, { deleteOnExit: false });
    }
    container = await new FleetJobsContainer(image).start();
    iot = new IoTClient({ ...container.getIotClientConfig(), maxAttempts: 1 });
  }, 900_000);
  afterAll(async () => {
    iot?.destroy();
    await container?.stop();
  });

  it('runs as an unprivileged user with its store, master key and first admin key in /data', async () => {
    expect((await container.exec(['id', '-u'])).output.trim()).not.toBe('0');
    const data = (await container.exec(['ls', '/data'])).output.split(/\s+/);
    expect(data).toEqual(expect.arrayContaining(['admin-key.json', 'master.key', 'pglite']));
    expect(container.getAdminKey().token).toMatch(/^FJ[A-Z2-7]{18}\./);
  });

  it('listens on every interface with auth on: no key, no API; no secret, no MQTT session', async () => {
    expect((await fetch(`${container.getHttpUrl()}/healthz`)).status).toBe(200);
    expect((await fetch(`${container.getHttpUrl()}/jobs`)).status).toBe(401);
    await expect(
      mqtt.connectAsync(container.getMqttUrl(), {
        clientId: 'intruder',
        reconnectPeriod: 0,
        connectTimeout: 5000,
      }),
    ).rejects.toThrow(/Not authorized|Bad username or password/);
  });

  it('takes a job created with the AWS SDK (SigV4, admin key) through a device with its own secret', async () => {
    const { thingArn } = await iot.send(new CreateThingCommand({ thingName: 'boxed-1' }));
    const device = await container.connectDevice('boxed-1');
    try {
      await iot.send(
        new CreateJobCommand({ jobId: 'boxed-job', targets: [thingArn!], document: '{"op":"x"}' }),
      );
      expect((await device.nextMessage('notify-next')).json).toMatchObject({
        execution: { jobId: 'boxed-job' },
      });
      expect((await device.startNext()).body.execution).toMatchObject({
        status: 'IN_PROGRESS',
        versionNumber: 2,
      });
      expect((await device.update('boxed-job', { status: 'SUCCEEDED', expectedVersion: 2 })).outcome).toBe(
        'accepted',
      );
      const { execution } = await iot.send(
        new DescribeJobExecutionCommand({ jobId: 'boxed-job', thingName: 'boxed-1' }),
      );
      expect(execution?.status).toBe('SUCCEEDED');
    } finally {
      await device.close();
    }
  });
});
