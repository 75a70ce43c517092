import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { operatorClient } from '../helpers/operator.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';

const T0 = Date.parse('2026-04-01T00:00:00Z');

describe.each(BACKENDS)('dead letters and RetryJobExecution on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let d1: MqttClient;
  let d2: MqttClient;
  let now = new Date(T0);
  const at = (s: number) => (now = new Date(T0 + s * 1000));
  const { rest, cli } = operatorClient(() => app.addresses.http);
  const root = (thing: string) => `$aws/things/${thing}/jobs`;
  const fail = async (device: MqttClient, thing: string, jobId: string, reason: string) => {
    const started = await deviceRequest(device, `${root(thing)}/start-next`, {});
    expect(started.json.execution).toMatchObject({ jobId });
    const done = await deviceRequest(device, `${root(thing)}/${jobId}/update`, {
      status: 'FAILED',
      statusDetails: { reason },
    });
    expect(done.outcome).toBe('accepted');
  };
  const deadLetters = async (query = '') =>
    rest('GET', `/executions?retriesExhausted=true${query}`).then((r) => {
      expect(r.status).toBe(200);
      return r.body.executions as { jobId: string; thingName: string; [k: string]: unknown }[];
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db, clock: () => now, workers: { autoStart: false } });
    for (const thing of ['dl-1', 'dl-2']) expect((await rest('POST', `/things/${thing}`)).status).toBe(200);
    d1 = await connectDevice(app.addresses.mqtt, { clientId: 'dl-1' });
    d2 = await connectDevice(app.addresses.mqtt, { clientId: 'dl-2' });

    at(0);
    await rest('PUT', '/jobs/with-retry', {
      targets: ['thing/dl-1', 'thing/dl-2'],
      document: JSON.stringify({ op: 'flash' }),
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 1 }] },
    });
    at(1);
    await fail(d1, 'dl-1', 'with-retry', 'disk full');
    at(2);
    await fail(d1, 'dl-1', 'with-retry', 'disk still full');
    const ok = await deviceRequest(d2, `${root('dl-2')}/with-retry/update`, { status: 'SUCCEEDED' });
    expect(ok.outcome).toBe('accepted');
    at(3);
    await rest('PUT', '/jobs/no-retry', { targets: ['thing/dl-2'], document: JSON.stringify({ op: 'x' }) });
    await fail(d2, 'dl-2', 'no-retry', 'bad image');
    at(4);
    await rest('PUT', '/jobs/delayed', {
      targets: ['thing/dl-2'],
      document: JSON.stringify({ op: 'y' }),
      jobExecutionsRetryConfig: {
        criteriaList: [{ failureType: 'FAILED', numberOfRetries: 2 }],
        retryDelaySeconds: 600,
      },
    });
    await fail(d2, 'dl-2', 'delayed', 'flaky');
  });
  afterAll(async () => {
    await d1?.endAsync();
    await d2?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('lists executions that failed after their last retry, newest first, with every attempt', async () => {
    expect((await rest('GET', '/jobs/with-retry')).body.job.status).toBe('COMPLETED');
    const list = await deadLetters();
    // The delayed retry is still waiting: not a dead letter.
    expect(list.map((e) => `${e.thingName}/${e.jobId}`)).toEqual(['dl-2/no-retry', 'dl-1/with-retry']);
    expect(list[1]).toMatchObject({
      jobStatus: 'COMPLETED',
      status: 'FAILED',
      executionNumber: 2,
      retryAttempt: 1,
      thingArn: 'arn:aws:iot:local:000000000000:thing/dl-1',
      statusDetails: { detailsMap: { reason: 'disk still full' } },
      attempts: [
        {
          executionNumber: 1,
          retryAttempt: 0,
          status: 'FAILED',
          statusDetails: { detailsMap: { reason: 'disk full' } },
          queuedAt: T0 / 1000,
          startedAt: T0 / 1000 + 1,
          lastUpdatedAt: T0 / 1000 + 1,
        },
        {
          executionNumber: 2,
          status: 'FAILED',
          statusDetails: { detailsMap: { reason: 'disk still full' } },
        },
      ],
    });
    expect(await deadLetters('&jobId=with-retry')).toHaveLength(1);
    expect(await deadLetters('&thingName=dl-2&status=FAILED')).toHaveLength(1);
    expect(await deadLetters('&status=TIMED_OUT')).toEqual([]);
  });

  it('pages with maxResults and nextToken', async () => {
    const first = await rest('GET', '/executions?retriesExhausted=true&maxResults=1');
    expect(first.body.executions).toHaveLength(1);
    const second = await rest(
      'GET',
      `/executions?retriesExhausted=true&maxResults=1&nextToken=${String(first.body.nextToken)}`,
    );
    expect(second.body.executions.map((e: { jobId: string }) => e.jobId)).toEqual(['with-retry']);
    expect(second.body.nextToken).toBeUndefined();
  });

  it('refuses a list without retriesExhausted=true or for a status that never exhausts retries', async () => {
    for (const url of [
      '/executions',
      '/executions?retriesExhausted=false',
      '/executions?retriesExhausted=true&status=QUEUED',
    ]) {
      const res = await rest('GET', url);
      expect(res.status).toBe(400);
      expect(res.error).toBe('InvalidRequestException');
    }
  });

  it('retry now queues the next execution, reopens the COMPLETED job and notifies the device', async () => {
    await d1.subscribeAsync(`${root('dl-1')}/notify-next`, { qos: 1 });
    const announced = waitForMessage(
      d1,
      `${root('dl-1')}/notify-next`,
      (m) => m.json.execution !== undefined,
    );
    at(10);
    const res = await rest('PUT', '/things/dl-1/jobs/with-retry/retry');
    expect(res.status).toBe(200);
    expect(res.body.execution).toMatchObject({
      jobId: 'with-retry',
      status: 'QUEUED',
      executionNumber: 3,
      retryAttempt: 2,
      versionNumber: 1,
    });
    expect((await announced).json.execution).toMatchObject({ jobId: 'with-retry', executionNumber: 3 });
    expect((await rest('GET', '/jobs/with-retry')).body.job).toMatchObject({ status: 'IN_PROGRESS' });
    expect((await deadLetters()).map((e) => e.jobId)).toEqual(['no-retry']);

    const again = await rest('PUT', '/things/dl-1/jobs/with-retry/retry');
    expect(again.status).toBe(409);
    expect(again.error).toBe('InvalidStateTransitionException');

    const done = await deviceRequest(d1, `${root('dl-1')}/with-retry/update`, { status: 'SUCCEEDED' });
    expect(done.outcome).toBe('accepted');
    expect((await rest('GET', '/jobs/with-retry')).body.job).toMatchObject({ status: 'COMPLETED' });
  });

  it('refuses to retry an execution of a CANCELED job, a waiting retry, or an unknown one', async () => {
    at(15);
    await rest('PUT', '/jobs/continuous', {
      targets: ['thing/dl-2'],
      document: JSON.stringify({ op: 'c' }),
      targetSelection: 'CONTINUOUS',
    });
    await fail(d2, 'dl-2', 'continuous', 'nope');
    expect((await rest('PUT', '/jobs/continuous/cancel', {})).status).toBe(200);
    const canceled = await rest('PUT', '/things/dl-2/jobs/continuous/retry');
    expect(canceled.status).toBe(409);
    expect(canceled.body.message).toContain('CANCELED');
    expect((await rest('PUT', '/things/dl-2/jobs/delayed/retry')).status).toBe(409);
    const missing = await rest('PUT', '/things/dl-2/jobs/nope/retry');
    expect(missing.status).toBe(404);
    expect((await rest('GET', '/things/dl-2/jobs/no-retry')).body.execution.executionNumber).toBe(1);
  });

  it('lists and retries dead letters from the CLI', async () => {
    at(20);
    await rest('PUT', '/jobs/cli-job', { targets: ['thing/dl-1'], document: JSON.stringify({ op: 'z' }) });
    await fail(d1, 'dl-1', 'cli-job', 'no power');
    const listed = await cli(['executions', 'dead-letters', '--thing', 'dl-1']);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/dl-1\s+cli-job\s+FAILED\s+1\s+1\s+2026-04-01T00:00:20Z\s+reason=no power/);
    const retried = await cli(['executions', 'retry', 'dl-1', 'cli-job']);
    expect(retried).toMatchObject({ code: 0, out: 'queued execution 2 of cli-job on dl-1\n' });
    const refused = await cli(['executions', 'retry', 'dl-1', 'cli-job']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('InvalidStateTransitionException');
  });
});
