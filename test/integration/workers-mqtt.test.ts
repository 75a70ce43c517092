import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import { minutes } from '../helpers/workers.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

const T0 = new Date('2026-04-01T00:00:00Z');
const epoch = (d: Date) => Math.floor(d.getTime() / 1000);
const root = (thing: string) => `$aws/things/${thing}/jobs`;

interface Sse {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/**
 * Opens GET /events and resolves once the response headers arrived (the server has fixed where the stream
 * starts); `take(n)` then reads the next n events, failing after the timeout.
 */
async function openEvents(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ take(count: number, timeoutMs?: number): Promise<Sse[]>; close(): Promise<void> }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const ready: Sse[] = [];
  return {
    async take(count, timeoutMs = 5000) {
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        while (ready.length < count) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = Object.fromEntries(
              block
                .split('\n')
                .filter((l) => !l.startsWith(':') && l.includes(': '))
                .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
            );
            if (fields.data !== undefined) {
              ready.push({ id: fields.id ?? '', event: fields.event ?? '', data: JSON.parse(fields.data) });
            }
          }
        }
      } catch (err) {
        if (!controller.signal.aborted) throw err;
        throw new Error(`GET /events delivered ${ready.length} of ${count} events within ${timeoutMs} ms`, {
          cause: err,
        });
      } finally {
        clearTimeout(timer);
      }
      return ready.splice(0, count);
    },
    async close() {
      controller.abort();
      await reader.cancel().catch(() => undefined);
    },
  };
}

async function readEvents(url: string, headers: Record<string, string>, count: number): Promise<Sse[]> {
  const stream = await openEvents(url, headers);
  try {
    return await stream.take(count);
  } finally {
    await stream.close();
  }
}

describe.each(BACKENDS)('workers seen by devices and operators on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  let operator: MqttClient;
  let now = T0;

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(t.db, ['m1', 'm2'], now);
    app = await startTestServer({ db: t.db, clock: () => now, workers: { autoStart: false } });
    device = await connectDevice(app.addresses.mqtt, { clientId: 'm1' });
    await device.subscribeAsync([`${root('m1')}/notify`, `${root('m1')}/notify-next`], { qos: 1 });
    operator = await connectDevice(app.addresses.mqtt, { clientId: 'operator' });
    await operator.subscribeAsync('$aws/events/#', { qos: 1 });
  });
  afterAll(async () => {
    await device?.endAsync();
    await operator?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('a step timeout moves the device execution to TIMED_OUT, notifies the device and publishes the event', async () => {
    const next = waitForMessage(
      device,
      `${root('m1')}/notify-next`,
      (m) => m.json.execution?.jobId === 'step',
    );
    await createJob(app.deps, {
      jobId: 'step',
      targets: ['thing/m1'],
      document: '{"op":"flash"}',
      timeoutConfig: { inProgressTimeoutInMinutes: 30 },
    });
    await next;
    const started = await deviceRequest(device, `${root('m1')}/start-next`, {
      clientToken: 's1',
      stepTimeoutInMinutes: 2,
    });
    expect(started.json.execution).toMatchObject({ jobId: 'step', status: 'IN_PROGRESS', versionNumber: 2 });

    now = minutes(T0, 2);
    const notify = waitForMessage(device, `${root('m1')}/notify`);
    const emptied = waitForMessage(device, `${root('m1')}/notify-next`);
    const event = waitForMessage(operator, '$aws/events/jobExecution/step/timed_out');
    const jobEvent = waitForMessage(operator, '$aws/events/job/step/completed');
    expect(await app.workers.timeouts.runOnce(minutes(T0, 2))).toBe(1);
    expect((await notify).json).toEqual({ timestamp: epoch(now), jobs: {} });
    expect((await emptied).json).toEqual({ timestamp: epoch(now) });
    expect((await event).json).toMatchObject({
      eventType: 'JOB_EXECUTION',
      operation: 'timed_out',
      jobId: 'step',
      thingArn: 'arn:aws:iot:local:000000000000:thing/m1',
      status: 'TIMED_OUT',
    });
    expect((await jobEvent).json).toMatchObject({
      eventType: 'JOB',
      operation: 'completed',
      status: 'COMPLETED',
      completedAt: epoch(now),
      jobProcessDetails: { numberOfTimedOutThings: 1, numberOfInProgressThings: 0 },
    });

    const late = await deviceRequest(device, `${root('m1')}/step/update`, {
      clientToken: 'late',
      status: 'SUCCEEDED',
    });
    expect(late.outcome).toBe('rejected');
    expect(late.json).toMatchObject({
      code: 'InvalidStateTransition',
      executionState: { status: 'TIMED_OUT', versionNumber: 3 },
    });
  });

  it('a device FAILED update is retried as a new execution the device is told about', async () => {
    now = minutes(T0, 10);
    await createJob(app.deps, {
      jobId: 'flaky',
      targets: ['thing/m1'],
      document: '{"op":"flaky"}',
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 1 }] },
    });
    const first = await deviceRequest(device, `${root('m1')}/start-next`, { clientToken: 'f1' });
    expect(first.json.execution).toMatchObject({ jobId: 'flaky', executionNumber: 1 });
    const next = waitForMessage(device, `${root('m1')}/notify-next`);
    await deviceRequest(device, `${root('m1')}/flaky/update`, { clientToken: 'f2', status: 'FAILED' });
    expect((await next).json.execution).toMatchObject({
      jobId: 'flaky',
      status: 'QUEUED',
      executionNumber: 2,
      versionNumber: 1,
    });
    const second = await deviceRequest(device, `${root('m1')}/start-next`, { clientToken: 'f3' });
    expect(second.json.execution).toMatchObject({ jobId: 'flaky', executionNumber: 2, versionNumber: 2 });
    const failedEvent = waitForMessage(operator, '$aws/events/jobExecution/flaky/failed');
    const completed = waitForMessage(operator, '$aws/events/job/flaky/completed');
    await deviceRequest(device, `${root('m1')}/flaky/update`, { clientToken: 'f4', status: 'FAILED' });
    expect((await failedEvent).json.status).toBe('FAILED');
    // One retry only: the second failure ends the job.
    expect((await completed).json.jobProcessDetails).toMatchObject({ numberOfFailedThings: 1 });
  });

  it('a device is notified when the rollout reaches it and when endTime cancels its execution', async () => {
    now = minutes(T0, 30);
    await insertThings(t.db, ['m3'], now);
    const r3 = root('m3');
    const device3 = await connectDevice(app.addresses.mqtt, { clientId: 'm3' });
    try {
      await device3.subscribeAsync([`${r3}/notify`, `${r3}/notify-next`], { qos: 1 });
      await createJob(app.deps, {
        jobId: 'windowed',
        targets: ['thing/m3'],
        document: '{"op":"w"}',
        schedulingConfig: {
          startTime: minutes(T0, 60).toISOString().slice(0, 16),
          endTime: minutes(T0, 120).toISOString().slice(0, 16),
          endBehavior: 'CANCEL',
        },
      });
      const queued = waitForMessage(
        device3,
        `${r3}/notify-next`,
        (m) => m.json.execution?.jobId === 'windowed',
      );
      now = minutes(T0, 60);
      await app.workers.rollout.runOnce(now);
      expect((await queued).json.execution).toMatchObject({ status: 'QUEUED', jobDocument: { op: 'w' } });

      const emptied = waitForMessage(device3, `${r3}/notify-next`, (m) => m.json.execution === undefined);
      const notify = waitForMessage(device3, `${r3}/notify`);
      const canceled = waitForMessage(operator, '$aws/events/job/windowed/canceled');
      now = minutes(T0, 120);
      await app.workers.rollout.runOnce(now);
      expect((await emptied).json).toEqual({ timestamp: epoch(now) });
      expect((await notify).json).toEqual({ timestamp: epoch(now), jobs: {} });
      expect((await canceled).json).toMatchObject({
        status: 'CANCELED',
        reasonCode: 'SCHEDULED_END_TIME_REACHED',
      });
    } finally {
      await device3.endAsync();
    }
  });

  it('GET /events streams the events in commit order and resumes after Last-Event-ID', async () => {
    await app.workers.events.runOnce(now);
    const url = `${app.addresses.http}/events`;
    const all = await readEvents(url, { 'last-event-id': '0' }, 5);
    expect(all.map((e) => `${e.event} ${String(e.data.jobId)} ${String(e.data.operation)}`)).toEqual([
      'jobExecution step timed_out',
      'job step completed',
      'jobExecution flaky failed',
      'jobExecution flaky failed',
      'job flaky completed',
    ]);
    const ids = all.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const resumed = await readEvents(url, { 'last-event-id': String(ids[1]) }, 3);
    expect(resumed.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
    expect(resumed[2]?.data).toEqual(all[4]?.data);

    // A live consumer (no Last-Event-ID) gets only what happens after it connected.
    const live = await openEvents(`${url}?jobId=live`);
    now = minutes(T0, 20);
    await createJob(app.deps, {
      jobId: 'live',
      targets: ['thing/m2'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
    });
    await app.workers.timeouts.runOnce(minutes(T0, 21));
    await app.workers.events.runOnce(minutes(T0, 21));
    const got = await live.take(1);
    await live.close();
    expect(got[0]?.data).toMatchObject({ jobId: 'live', operation: 'timed_out' });
    expect(Number(got[0]?.id)).toBeGreaterThan(ids[4] as number);
  });

  it('GET /events rejects a Last-Event-ID that is not an event id', async () => {
    const res = await fetch(`${app.addresses.http}/events`, { headers: { 'last-event-id': 'abc' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('InvalidRequestException');
  });
});
