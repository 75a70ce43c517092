import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { minutes, seconds, workerDeps } from '../helpers/workers.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';
import { createTimeoutWorker } from '../../src/workers/timeouts.js';
import { createRetryWorker } from '../../src/workers/retries.js';
import { createEventsWorker } from '../../src/workers/events.js';
import { createRolloutWorker } from '../../src/workers/rollout.js';
import { saveDeploymentSettings } from '../../src/store/events.js';

describe.each(BACKENDS)('timeout and retry workers on %s', (backend) => {
  let t: TestDb;
  const t0 = new Date('2026-03-01T00:00:00Z');
  const epoch = (d: Date) => Math.floor(d.getTime() / 1000);

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(
      t.db,
      Array.from({ length: 12 }, (_, i) => `thing-${i}`),
      t0,
    );
  });
  afterAll(() => t.close());

  const executions = (jobId: string) =>
    t.db.query<{
      thingName: string;
      executionNumber: number;
      status: string;
      versionNumber: number;
      retryAttempt: number;
    }>(
      `SELECT thing_name, execution_number, status, version_number, retry_attempt FROM job_executions
       WHERE job_id = $1 ORDER BY thing_name, execution_number`,
      [jobId],
    );

  it('times out QUEUED executions at their queued deadline, emits timed_out events and completes the job', async () => {
    const deps = workerDeps(t.db, t0);
    await createJob(deps, {
      jobId: 'queued-timeout',
      targets: ['thing/thing-0', 'thing/thing-1', 'thing/thing-2'],
      document: '{"op":"x"}',
      timeoutConfig: { queuedTimeoutInMinutes: 5 },
    });
    const worker = createTimeoutWorker(deps, { batchSize: 2 });
    expect(await worker.runOnce(minutes(t0, 5 - 1 / 60))).toBe(0);
    expect(await worker.runOnce(minutes(t0, 5))).toBe(3);
    expect(await worker.runOnce(minutes(t0, 6))).toBe(0);
    const rows = await executions('queued-timeout');
    expect(rows.map((r) => [r.status, r.versionNumber])).toEqual([
      ['TIMED_OUT', 2],
      ['TIMED_OUT', 2],
      ['TIMED_OUT', 2],
    ]);
    const job = await t.db.query<{ status: string; completedAt: Date; targets: string[] }>(
      `SELECT status, completed_at, targets FROM jobs WHERE job_id = 'queued-timeout'`,
    );
    expect(job[0]).toMatchObject({ status: 'COMPLETED', completedAt: minutes(t0, 5) });
    expect(job[0]?.targets).toHaveLength(3);

    const events = await t.db.query<{ topic: string; payload: Record<string, unknown> }>(
      `SELECT topic, payload FROM outbox WHERE kind = 'event' AND job_id = 'queued-timeout' ORDER BY id`,
    );
    expect(events.map((e) => e.topic)).toEqual([
      '$aws/events/jobExecution/queued-timeout/timed_out',
      '$aws/events/jobExecution/queued-timeout/timed_out',
      '$aws/events/jobExecution/queued-timeout/timed_out',
      '$aws/events/job/queued-timeout/completed',
    ]);
    expect(events[0]?.payload).toEqual({
      eventType: 'JOB_EXECUTION',
      eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      timestamp: epoch(minutes(t0, 5)),
      operation: 'timed_out',
      jobId: 'queued-timeout',
      thingArn: 'arn:aws:iot:local:000000000000:thing/thing-0',
      status: 'TIMED_OUT',
      statusDetails: {},
    });
    expect(events[3]?.payload).toEqual({
      eventType: 'JOB',
      eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      timestamp: epoch(minutes(t0, 5)),
      operation: 'completed',
      jobId: 'queued-timeout',
      status: 'COMPLETED',
      targetSelection: 'SNAPSHOT',
      targets: job[0]?.targets,
      createdAt: epoch(t0),
      lastUpdatedAt: epoch(minutes(t0, 5)),
      completedAt: epoch(minutes(t0, 5)),
      jobProcessDetails: {
        numberOfCanceledThings: 0,
        numberOfSucceededThings: 0,
        numberOfFailedThings: 0,
        numberOfRejectedThings: 0,
        numberOfQueuedThings: 0,
        numberOfInProgressThings: 0,
        numberOfRemovedThings: 0,
        numberOfTimedOutThings: 3,
      },
    });
    const feed = await t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM events WHERE job_id = 'queued-timeout'`,
    );
    expect(feed[0]?.n).toBe(4);
    const notify = await t.db.query<{ payload: unknown }>(
      `SELECT payload FROM outbox WHERE kind = 'notify' AND thing_name = 'thing-1' ORDER BY id DESC LIMIT 1`,
    );
    expect(notify[0]?.payload).toEqual({ timestamp: epoch(minutes(t0, 5)), jobs: {} });
  });

  it('re-queues a TIMED_OUT execution as a new execution until the per-type retries are spent', async () => {
    const deps = workerDeps(t.db, t0);
    await createJob(deps, {
      jobId: 'retry-timeout',
      targets: ['thing/thing-3'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'TIMED_OUT', numberOfRetries: 2 }] },
    });
    const worker = createTimeoutWorker(deps);
    expect(await worker.runOnce(minutes(t0, 1))).toBe(1);
    expect(await worker.runOnce(minutes(t0, 2))).toBe(1);
    expect(await worker.runOnce(minutes(t0, 3))).toBe(1);
    expect(await worker.runOnce(minutes(t0, 10))).toBe(0);
    expect(await executions('retry-timeout')).toEqual([
      { thingName: 'thing-3', executionNumber: 1, status: 'TIMED_OUT', versionNumber: 2, retryAttempt: 0 },
      { thingName: 'thing-3', executionNumber: 2, status: 'TIMED_OUT', versionNumber: 2, retryAttempt: 1 },
      { thingName: 'thing-3', executionNumber: 3, status: 'TIMED_OUT', versionNumber: 2, retryAttempt: 2 },
    ]);
    const job = await t.db.query<{ status: string; completedAt: Date }>(
      `SELECT status, completed_at FROM jobs WHERE job_id = 'retry-timeout'`,
    );
    expect(job[0]).toEqual({ status: 'COMPLETED', completedAt: minutes(t0, 3) });
    const nexts = await t.db.query<{ executionNumber: number | null }>(
      `SELECT execution_number FROM outbox WHERE kind = 'notify-next' AND thing_name = 'thing-3' ORDER BY id`,
    );
    // The retry became the head in the transaction of the timeout, so the device is told once per attempt.
    expect(nexts.map((n) => n.executionNumber)).toEqual([1, 2, 3, null]);
  });

  it('delays a retry with full jitter within the backoff cap, and the job waits for it', async () => {
    const deps = workerDeps(t.db, t0);
    await createJob(deps, {
      jobId: 'retry-delay',
      targets: ['thing/thing-4'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
      jobExecutionsRetryConfig: {
        criteriaList: [{ failureType: 'ALL', numberOfRetries: 5 }],
        retryDelaySeconds: 60,
        backoffFactor: 2,
        maxDelaySeconds: 90,
      },
    });
    const timeouts = createTimeoutWorker(deps);
    const retries = createRetryWorker(deps);
    expect(await timeouts.runOnce(minutes(t0, 1))).toBe(1);
    const waiting = await t.db.query<{ dueAt: Date; retryAttempt: number }>(
      `SELECT due_at, retry_attempt FROM execution_retries WHERE job_id = 'retry-delay'`,
    );
    expect(waiting).toHaveLength(1);
    const first = waiting[0] as { dueAt: Date; retryAttempt: number };
    expect(first.retryAttempt).toBe(1);
    expect(first.dueAt.getTime()).toBeGreaterThanOrEqual(minutes(t0, 1).getTime());
    expect(first.dueAt.getTime()).toBeLessThanOrEqual(seconds(minutes(t0, 1), 60).getTime());
    const job = await t.db.query<{ status: string }>(`SELECT status FROM jobs WHERE job_id = 'retry-delay'`);
    expect(job[0]?.status).toBe('IN_PROGRESS');

    expect(await retries.runOnce(seconds(minutes(t0, 1), 60))).toBe(1);
    expect(await retries.runOnce(minutes(t0, 5))).toBe(0);
    const rows = await executions('retry-delay');
    expect(rows.map((r) => [r.executionNumber, r.status, r.retryAttempt, r.versionNumber])).toEqual([
      [1, 'TIMED_OUT', 0, 2],
      [2, 'QUEUED', 1, 1],
    ]);
    // The second delay is capped by maxDelaySeconds (60 * 2 = 120 > 90).
    expect(await timeouts.runOnce(minutes(t0, 3))).toBe(1);
    const second = await t.db.query<{ dueAt: Date; retryAttempt: number }>(
      `SELECT due_at, retry_attempt FROM execution_retries WHERE job_id = 'retry-delay'`,
    );
    expect(second[0]?.retryAttempt).toBe(2);
    expect(second[0]?.dueAt.getTime()).toBeLessThanOrEqual(seconds(minutes(t0, 3), 90).getTime());
  });

  it('never retries when the criteria do not match the failure type', async () => {
    const deps = workerDeps(t.db, t0);
    await createJob(deps, {
      jobId: 'retry-failed-only',
      targets: ['thing/thing-5'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'FAILED', numberOfRetries: 3 }] },
    });
    expect(await createTimeoutWorker(deps).runOnce(minutes(t0, 1))).toBe(1);
    expect((await executions('retry-failed-only')).map((r) => r.status)).toEqual(['TIMED_OUT']);
  });

  it('keeps events for the retention period, numbered in order, then deletes them', async () => {
    const deps = workerDeps(t.db, t0);
    const events = createEventsWorker(deps, { retentionMs: 3_600_000, batchSize: 2 });
    await events.runOnce(t0);
    const seqs = await t.db.query<{ seq: number | null; createdAt: Date }>(
      `SELECT seq, created_at FROM events ORDER BY id`,
    );
    expect(seqs.length).toBeGreaterThan(4);
    expect(seqs.map((r) => r.seq)).toEqual(seqs.map((_, i) => (seqs[0]?.seq as number) + i));
    const times = seqs.map((r) => r.createdAt.getTime());
    await events.runOnce(new Date(Math.min(...times) + 3_600_000));
    expect(await t.db.query(`SELECT 1 FROM events`)).toHaveLength(seqs.length);
    await events.runOnce(new Date(Math.max(...times) + 3_600_001));
    expect(await t.db.query(`SELECT 1 FROM events`)).toHaveLength(0);
  });

  it('the rollup sweep completes a job whose last two executions ended in concurrent transactions', async () => {
    const deps = workerDeps(t.db, t0);
    await createJob(deps, { jobId: 'raced', targets: ['thing/thing-6', 'thing/thing-7'], document: '{}' });
    // What two concurrent last updates leave behind: each saw the other's execution still pending.
    await t.db.query(
      `UPDATE job_executions SET status = 'SUCCEEDED', version_number = version_number + 1 WHERE job_id = 'raced'`,
    );
    expect(await createRolloutWorker(deps).runOnce(minutes(t0, 1))).toBe(1);
    const job = await t.db.query<{ status: string; completedAt: Date }>(
      `SELECT status, completed_at FROM jobs WHERE job_id = 'raced'`,
    );
    expect(job[0]).toEqual({ status: 'COMPLETED', completedAt: minutes(t0, 1) });
    const events = await t.db.query(`SELECT 1 FROM events WHERE topic = '$aws/events/job/raced/completed'`);
    expect(events).toHaveLength(1);
    expect(await createRolloutWorker(deps).runOnce(minutes(t0, 2))).toBe(0);
  });

  it('builds thingArn from the region and account the server started with', async () => {
    const deps = workerDeps(t.db, t0);
    await saveDeploymentSettings(t.db, { region: 'eu-west-1', accountId: '123456789012' });
    await createJob(deps, {
      jobId: 'arn-job',
      targets: ['thing/thing-8'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
    });
    await createTimeoutWorker(deps).runOnce(minutes(t0, 1));
    const rows = await t.db.query<{ payload: { thingArn: string } }>(
      `SELECT payload FROM events WHERE job_id = 'arn-job' AND payload ->> 'eventType' = 'JOB_EXECUTION'`,
    );
    expect(rows.map((r) => r.payload.thingArn)).toEqual(['arn:aws:iot:eu-west-1:123456789012:thing/thing-8']);
  });
});
