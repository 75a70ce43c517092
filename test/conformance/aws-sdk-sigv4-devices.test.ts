import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateJobCommand,
  CreateThingCommand,
  DescribeEndpointCommand,
  DescribeJobExecutionCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import {
  DescribeJobExecutionCommand as DeviceDescribeJobExecutionCommand,
  GetPendingJobExecutionsCommand,
  IoTJobsDataPlaneClient,
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
} from '@aws-sdk/client-iot-jobs-data-plane';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';

/** The error an SDK call rejects with: its exception name and HTTP status. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  const err = (await p.then(
    () => {
      throw new Error('the call succeeded; a failure was expected');
    },
    (e: unknown) => e,
  )) as { name: string; $metadata?: { httpStatusCode?: number } };
  return { name: err.name, status: err.$metadata?.httpStatusCode };
}

/**
 * [issue 18] Unmodified AWS SDK clients with AUTH_MODE=required: @aws-sdk/client-iot-jobs-data-plane signs the
 * device data plane with SigV4 (the thing name and its secret, or an operator key), and @aws-sdk/client-iot's
 * DescribeEndpoint names the listeners devices connect to.
 */
describe.each(BACKENDS)('AWS SDK SigV4 on the device data plane, DescribeEndpoint, on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey;
  let iot: IoTClient;
  const clients: IoTJobsDataPlaneClient[] = [];
  const secrets: Record<string, string> = {};
  const credentialIds: Record<string, string> = {};

  const operatorApi = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${admin.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, string>;
  };
  const device = (accessKeyId: string, secretAccessKey: string) => {
    const client = new IoTJobsDataPlaneClient({
      endpoint: app.addresses.deviceHttp as string,
      region: 'local',
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({
      db: t.db,
      auth: { onAdminKeyCreated: (k) => (admin = k) },
      config: { deviceHttpPort: 0 },
    });
    iot = new IoTClient({
      endpoint: app.addresses.http,
      region: 'local',
      credentials: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey },
      maxAttempts: 1,
    });
    for (const thingName of ['sig-a', 'sig-b']) {
      await iot.send(new CreateThingCommand({ thingName }));
      const created = await operatorApi('POST', `/things/${thingName}/credentials`);
      secrets[thingName] = created.secret as string;
      credentialIds[thingName] = created.credentialId as string;
    }
    await iot.send(
      new CreateJobCommand({
        jobId: 'sig-job',
        targets: ['arn:aws:iot:local:000000000000:thing/sig-a', 'arn:aws:iot:local:000000000000:thing/sig-b'],
        document: '{"operation":"reboot"}',
      }),
    );
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    iot?.destroy();
    await app?.close();
    await t?.close();
  });

  it('runs a job to SUCCEEDED signed with the thing name and its secret', async () => {
    const a = device('sig-a', secrets['sig-a'] as string);
    const pending = await a.send(new GetPendingJobExecutionsCommand({ thingName: 'sig-a' }));
    expect(pending.queuedJobs?.map((j) => j.jobId)).toEqual(['sig-job']);
    const started = await a.send(
      new StartNextPendingJobExecutionCommand({ thingName: 'sig-a', statusDetails: { step: 'download' } }),
    );
    expect(started.execution).toMatchObject({ jobId: 'sig-job', status: 'IN_PROGRESS', versionNumber: 2 });
    expect(started.execution?.jobDocument).toBe('{"operation":"reboot"}');
    const updated = await a.send(
      new UpdateJobExecutionCommand({
        thingName: 'sig-a',
        jobId: 'sig-job',
        status: 'SUCCEEDED',
        expectedVersion: 2,
        includeJobExecutionState: true,
      }),
    );
    expect(updated.executionState).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });
    const seen = await iot.send(new DescribeJobExecutionCommand({ jobId: 'sig-job', thingName: 'sig-a' }));
    expect(seen.execution?.status).toBe('SUCCEEDED');
  });

  it('refuses another thing (403), a wrong secret (401) and a revoked one (401)', async () => {
    const a = device('sig-a', secrets['sig-a'] as string);
    expect(await failure(a.send(new StartNextPendingJobExecutionCommand({ thingName: 'sig-b' })))).toEqual({
      name: 'ForbiddenException',
      status: 403,
    });
    expect(
      await failure(
        device('sig-b', secrets['sig-a'] as string).send(
          new GetPendingJobExecutionsCommand({ thingName: 'sig-b' }),
        ),
      ),
    ).toEqual({ name: 'UnauthorizedException', status: 401 });
    // The refused calls changed nothing: sig-b's execution is still queued.
    const seen = await iot.send(new DescribeJobExecutionCommand({ jobId: 'sig-job', thingName: 'sig-b' }));
    expect(seen.execution?.status).toBe('QUEUED');

    const b = device('sig-b', secrets['sig-b'] as string);
    await operatorApi('DELETE', `/things/sig-b/credentials/${credentialIds['sig-b']}`);
    expect(await failure(b.send(new GetPendingJobExecutionsCommand({ thingName: 'sig-b' })))).toEqual({
      name: 'UnauthorizedException',
      status: 401,
    });
  });

  it('lets an operator key act for any thing, a viewer key read only', async () => {
    const viewer = await operatorApi('POST', '/operator-keys', { role: 'viewer' });
    const asViewer = device(viewer.accessKeyId as string, viewer.secretAccessKey as string);
    const pending = await asViewer.send(new GetPendingJobExecutionsCommand({ thingName: 'sig-b' }));
    expect(pending.queuedJobs?.map((j) => j.jobId)).toEqual(['sig-job']);
    expect(
      await failure(asViewer.send(new StartNextPendingJobExecutionCommand({ thingName: 'sig-b' }))),
    ).toEqual({ name: 'ForbiddenException', status: 403 });

    const asAdmin = device(admin.accessKeyId, admin.secretAccessKey);
    const started = await asAdmin.send(new StartNextPendingJobExecutionCommand({ thingName: 'sig-b' }));
    expect(started.execution).toMatchObject({ jobId: 'sig-job', thingName: 'sig-b', status: 'IN_PROGRESS' });
    const described = await asAdmin.send(
      new DeviceDescribeJobExecutionCommand({ thingName: 'sig-b', jobId: 'sig-job' }),
    );
    expect(described.execution?.status).toBe('IN_PROGRESS');
  });

  it('answers DescribeEndpoint with the MQTT and device HTTPS listeners', async () => {
    const mqttPort = new URL(app.addresses.mqtt).port;
    const httpPort = new URL(app.addresses.deviceHttp as string).port;
    const ats = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }));
    expect(ats.endpointAddress).toBe(`127.0.0.1:${mqttPort}`);
    const legacy = await iot.send(new DescribeEndpointCommand({}));
    expect(legacy.endpointAddress).toBe(`127.0.0.1:${mqttPort}`);
    const jobs = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Jobs' }));
    expect(jobs.endpointAddress).toBe(`127.0.0.1:${httpPort}`);
    expect(
      await failure(iot.send(new DescribeEndpointCommand({ endpointType: 'iot:CredentialProvider' }))),
    ).toEqual({ name: 'ResourceNotFoundException', status: 404 });
    expect(await failure(iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Other' })))).toEqual({
      name: 'InvalidRequestException',
      status: 400,
    });
  });
});
