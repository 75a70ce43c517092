import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';

const ARN = 'arn:aws:iot:local:000000000000';
const T0 = 1767225600;

describe.each(BACKENDS)('job executions over REST on %s', (backend) => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await createControlPlane(backend);
    for (const n of ['e1', 'e2', 'e3']) await cp.call('POST', `/things/${n}`);
    await cp.call('PUT', '/jobs/job-a', {
      targets: ['thing/e1', 'thing/e2', 'thing/e3'],
      document: '{}',
      timeoutConfig: { inProgressTimeoutInMinutes: 10 },
    });
    cp.setNow(new Date((T0 + 5) * 1000));
    await cp.call('PUT', '/jobs/job-b', { targets: ['thing/e1'], document: '{}' });
    cp.setNow(new Date(T0 * 1000));
  });
  afterAll(() => cp.close());

  const start = (jobId: string, thingName: string, deadlineMinutes?: number) =>
    cp.t.db.query(
      `UPDATE job_executions SET status = 'IN_PROGRESS', version_number = version_number + 1, started_at = $3,
         last_updated_at = $3, status_details = '{"step":"1"}',
         in_progress_deadline = $3::timestamptz + make_interval(mins => $4::int)
       WHERE job_id = $1 AND thing_name = $2 AND status = 'QUEUED'`,
      [jobId, thingName, new Date((T0 + 60) * 1000), deadlineMinutes ?? null],
    );
  const execution = async (jobId: string, thingName: string) =>
    (
      await cp.t.db.query<{
        status: string;
        versionNumber: number;
        statusDetails: unknown;
        forceCanceled: boolean;
      }>(
        `SELECT status, version_number, status_details, force_canceled FROM job_executions
         WHERE job_id = $1 AND thing_name = $2 ORDER BY execution_number DESC LIMIT 1`,
        [jobId, thingName],
      )
    )[0];

  it('ListJobExecutionsForJob returns AWS summaries in thing order and pages', async () => {
    const first = await cp.call('GET', '/jobs/job-a/things?maxResults=2');
    expect(first.status).toBe(200);
    expect(first.body.executionSummaries).toEqual([
      {
        thingArn: `${ARN}:thing/e1`,
        jobExecutionSummary: {
          status: 'QUEUED',
          queuedAt: T0,
          lastUpdatedAt: T0,
          executionNumber: 1,
          retryAttempt: 0,
        },
      },
      expect.objectContaining({ thingArn: `${ARN}:thing/e2` }),
    ]);
    const rest = await cp.call(
      'GET',
      `/jobs/job-a/things?maxResults=2&nextToken=${first.body.nextToken as string}`,
    );
    expect((rest.body.executionSummaries as { thingArn: string }[]).map((s) => s.thingArn)).toEqual([
      `${ARN}:thing/e3`,
    ]);
    expect(rest.body.nextToken).toBeUndefined();
    expect((await cp.call('GET', '/jobs/job-a/things?status=IN_PROGRESS')).body.executionSummaries).toEqual(
      [],
    );
    expect((await cp.call('GET', '/jobs/nope/things')).status).toBe(404);
  });

  it('ListJobExecutionsForThing lists the newest first, with jobId and the summary', async () => {
    const res = await cp.call('GET', '/things/e1/jobs');
    expect(res.body.executionSummaries).toEqual([
      {
        jobId: 'job-b',
        jobExecutionSummary: {
          status: 'QUEUED',
          queuedAt: T0 + 5,
          lastUpdatedAt: T0 + 5,
          executionNumber: 1,
          retryAttempt: 0,
        },
      },
      expect.objectContaining({ jobId: 'job-a' }),
    ]);
    const paged = await cp.call('GET', '/things/e1/jobs?maxResults=1');
    expect((paged.body.executionSummaries as { jobId: string }[])[0]?.jobId).toBe('job-b');
    const next = await cp.call(
      'GET',
      `/things/e1/jobs?maxResults=1&nextToken=${paged.body.nextToken as string}`,
    );
    expect((next.body.executionSummaries as { jobId: string }[]).map((s) => s.jobId)).toEqual(['job-a']);
    expect((await cp.call('GET', '/things/e1/jobs?jobId=job-a')).body.executionSummaries).toHaveLength(1);
    expect((await cp.call('GET', '/things/ghost/jobs')).status).toBe(404);
  });

  it('DescribeJobExecution wraps statusDetails in detailsMap and reports the time left on a running timer', async () => {
    await start('job-a', 'e2', 10);
    cp.setNow(new Date((T0 + 120) * 1000));
    const res = await cp.call('GET', '/things/e2/jobs/job-a');
    cp.setNow(new Date(T0 * 1000));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      execution: {
        jobId: 'job-a',
        status: 'IN_PROGRESS',
        forceCanceled: false,
        statusDetails: { detailsMap: { step: '1' } },
        thingArn: `${ARN}:thing/e2`,
        queuedAt: T0,
        startedAt: T0 + 60,
        lastUpdatedAt: T0 + 60,
        executionNumber: 1,
        versionNumber: 2,
        retryAttempt: 0,
        approximateSecondsBeforeTimedOut: 540,
      },
    });
    expect((await cp.call('GET', '/things/e2/jobs/job-a?executionNumber=1')).status).toBe(200);
    const missing = await cp.call('GET', '/things/e2/jobs/job-a?executionNumber=9');
    expect(missing.status).toBe(404);
    expect(missing.error).toBe('ResourceNotFoundException');
  });

  it('CancelJobExecution cancels a QUEUED execution, merging statusDetails, and bumps versionNumber', async () => {
    const res = await cp.call('PUT', '/things/e1/jobs/job-a/cancel', {
      expectedVersion: 1,
      statusDetails: { reason: 'operator' },
    });
    expect(res.status).toBe(200);
    expect(await execution('job-a', 'e1')).toEqual({
      status: 'CANCELED',
      versionNumber: 2,
      statusDetails: { reason: 'operator' },
      forceCanceled: false,
    });
    const outbox = await cp.t.db.query<{ kind: string; jobId: string | null }>(
      `SELECT kind, job_id FROM outbox WHERE thing_name = 'e1' ORDER BY id DESC LIMIT 2`,
    );
    // e1's head was job-a (queued first); now job-b.
    expect(outbox).toEqual([
      { kind: 'notify-next', jobId: 'job-b' },
      { kind: 'notify', jobId: null },
    ]);
  });

  it('CancelJobExecution of a terminal execution is InvalidStateTransitionException', async () => {
    const res = await cp.call('PUT', '/things/e1/jobs/job-a/cancel');
    expect(res.status).toBe(409);
    expect(res.error).toBe('InvalidStateTransitionException');
  });

  it('CancelJobExecution of an IN_PROGRESS execution needs force; expectedVersion must match', async () => {
    const noForce = await cp.call('PUT', '/things/e2/jobs/job-a/cancel');
    expect(noForce.status).toBe(409);
    expect(noForce.error).toBe('InvalidStateTransitionException');
    const stale = await cp.call('PUT', '/things/e2/jobs/job-a/cancel?force=true', { expectedVersion: 1 });
    expect(stale.status).toBe(409);
    expect(stale.error).toBe('VersionConflictException');
    expect(await execution('job-a', 'e2')).toMatchObject({ status: 'IN_PROGRESS', versionNumber: 2 });
    const forced = await cp.call('PUT', '/things/e2/jobs/job-a/cancel?force=true', { expectedVersion: 2 });
    expect(forced.status).toBe(200);
    expect(await execution('job-a', 'e2')).toMatchObject({
      status: 'CANCELED',
      versionNumber: 3,
      forceCanceled: true,
    });
    const d = await cp.call('GET', '/things/e2/jobs/job-a');
    expect((d.body.execution as Record<string, unknown>).approximateSecondsBeforeTimedOut).toBeUndefined();
  });

  it('CancelJobExecution of an unknown execution is ResourceNotFoundException', async () => {
    expect((await cp.call('PUT', '/things/e3/jobs/nope/cancel')).status).toBe(404);
  });

  it('DeleteJobExecution deletes a terminal execution; a pending one only with force', async () => {
    const refused = await cp.call('DELETE', '/things/e3/jobs/job-a/executionNumber/1');
    expect(refused.status).toBe(409);
    expect(refused.error).toBe('InvalidStateTransitionException');
    expect(await execution('job-a', 'e3')).toMatchObject({ status: 'QUEUED' });
    expect((await cp.call('DELETE', '/things/e3/jobs/job-a/executionNumber/1?force=true')).status).toBe(200);
    expect(await execution('job-a', 'e3')).toBeUndefined();
    expect((await cp.call('DELETE', '/things/e1/jobs/job-a/executionNumber/1')).status).toBe(200);
    expect((await cp.call('DELETE', '/things/e1/jobs/job-a/executionNumber/1')).status).toBe(404);
    // Every execution of job-a is now gone or terminal: the SNAPSHOT job is COMPLETED.
    expect(((await cp.call('GET', '/jobs/job-a')).body.job as Record<string, unknown>).status).toBe(
      'COMPLETED',
    );
  });
});
