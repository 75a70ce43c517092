import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { insertThings } from '../../src/store/things.js';

const ARN = 'arn:aws:iot:local:000000000000';
const T0 = 1767225600; // 2026-01-01T00:00:00Z

describe.each(BACKENDS)('jobs over REST on %s', (backend) => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await createControlPlane(backend);
    for (const n of ['d1', 'd2', 'd3', 'd4']) await cp.call('POST', `/things/${n}`);
    await cp.call('POST', '/thing-groups/fleet');
    for (const n of ['d2', 'd3']) {
      await cp.call('PUT', '/thing-groups/addThingToThingGroup', { thingGroupName: 'fleet', thingName: n });
    }
  });
  afterAll(() => cp.close());

  /** What a device does when it starts an execution (the device API is tested elsewhere). */
  const start = (jobId: string, thingName: string) =>
    cp.t.db.query(
      `UPDATE job_executions SET status = 'IN_PROGRESS', version_number = version_number + 1, started_at = $3,
         last_updated_at = $3 WHERE job_id = $1 AND thing_name = $2 AND status = 'QUEUED'`,
      [jobId, thingName, new Date((T0 + 60) * 1000)],
    );
  const statuses = async (jobId: string) =>
    Object.fromEntries(
      (
        await cp.t.db.query<{ thingName: string; status: string }>(
          `SELECT thing_name, status FROM job_executions WHERE job_id = $1 ORDER BY thing_name`,
          [jobId],
        )
      ).map((r) => [r.thingName, r.status]),
    );

  it('CreateJob with every field returns {jobArn, jobId, description} and DescribeJob returns them all', async () => {
    const body = {
      targets: [`${ARN}:thinggroup/fleet`, 'thing/d1', 'thing/d2'],
      document: '{"operation":"install","version":"1.2"}',
      description: 'install 1.2',
      targetSelection: 'SNAPSHOT',
      timeoutConfig: { inProgressTimeoutInMinutes: 30, queuedTimeoutInMinutes: 60 },
      jobExecutionsRetryConfig: {
        criteriaList: [
          { failureType: 'FAILED', numberOfRetries: 2 },
          { failureType: 'TIMED_OUT', numberOfRetries: 1 },
        ],
        retryDelaySeconds: 10,
        backoffFactor: 2,
        maxDelaySeconds: 300,
      },
      jobExecutionsRolloutConfig: {
        maximumPerMinute: 1000,
        exponentialRate: {
          baseRatePerMinute: 50,
          incrementFactor: 2,
          rateIncreaseCriteria: { numberOfNotifiedThings: 100 },
        },
      },
      abortConfig: {
        criteriaList: [
          {
            failureType: 'FAILED',
            action: 'CANCEL',
            thresholdPercentage: 12.5,
            minNumberOfExecutedThings: 10,
          },
        ],
      },
      presignedUrlConfig: { roleArn: 'arn:aws:iam::000000000000:role/x', expiresInSec: 600 },
      namespaceId: 'ns1',
    };
    const res = await cp.call('PUT', '/jobs/install-1', body);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      jobArn: `${ARN}:job/install-1`,
      jobId: 'install-1',
      description: 'install 1.2',
    });
    const d = await cp.call('GET', '/jobs/install-1');
    expect(d.status).toBe(200);
    expect(d.body).toEqual({
      job: {
        jobArn: `${ARN}:job/install-1`,
        jobId: 'install-1',
        targetSelection: 'SNAPSHOT',
        status: 'IN_PROGRESS',
        forceCanceled: false,
        targets: [`${ARN}:thinggroup/fleet`, `${ARN}:thing/d1`, `${ARN}:thing/d2`],
        description: 'install 1.2',
        presignedUrlConfig: body.presignedUrlConfig,
        jobExecutionsRolloutConfig: body.jobExecutionsRolloutConfig,
        abortConfig: body.abortConfig,
        createdAt: T0,
        lastUpdatedAt: T0,
        jobProcessDetails: {
          numberOfCanceledThings: 0,
          numberOfSucceededThings: 0,
          numberOfFailedThings: 0,
          numberOfRejectedThings: 0,
          numberOfQueuedThings: 3,
          numberOfInProgressThings: 0,
          numberOfRemovedThings: 0,
          numberOfTimedOutThings: 0,
        },
        timeoutConfig: body.timeoutConfig,
        namespaceId: 'ns1',
        jobExecutionsRetryConfig: body.jobExecutionsRetryConfig,
        isConcurrent: false,
      },
    });
    const doc = await cp.call('GET', '/jobs/install-1/job-document');
    expect(doc.body).toEqual({ document: body.document });
    const queuedDeadline = await cp.t.db.query<{ queuedDeadline: Date }>(
      `SELECT queued_deadline FROM job_executions WHERE job_id = 'install-1' LIMIT 1`,
    );
    expect(queuedDeadline[0]?.queuedDeadline.getTime()).toBe((T0 + 3600) * 1000);
  });

  it('timestamps are epoch seconds with a fractional part', async () => {
    cp.setNow(new Date((T0 + 1.5) * 1000));
    await cp.call('PUT', '/jobs/frac', { targets: ['thing/d4'], document: '{}' });
    const d = await cp.call('GET', '/jobs/frac');
    expect((d.body.job as Record<string, unknown>).createdAt).toBe(T0 + 1.5);
    cp.setNow(new Date(T0 * 1000));
  });

  it('a duplicate jobId is ResourceAlreadyExistsException and changes nothing', async () => {
    const res = await cp.call('PUT', '/jobs/install-1', { targets: ['thing/d4'], document: '{}' });
    expect(res.status).toBe(409);
    expect(res.error).toBe('ResourceAlreadyExistsException');
    expect(await statuses('install-1')).toEqual({ d1: 'QUEUED', d2: 'QUEUED', d3: 'QUEUED' });
  });

  it('ListJobs filters by status, targetSelection and thingGroupName and pages newest first', async () => {
    cp.setNow(new Date((T0 + 10) * 1000));
    await cp.call('PUT', '/jobs/cont-1', {
      targets: ['thinggroup/fleet'],
      document: '{}',
      targetSelection: 'CONTINUOUS',
    });
    cp.setNow(new Date((T0 + 20) * 1000));
    await cp.call('PUT', '/jobs/snap-2', { targets: ['thing/d4'], document: '{}' });
    cp.setNow(new Date(T0 * 1000));
    const all = await cp.call('GET', '/jobs?maxResults=2');
    expect((all.body.jobs as { jobId: string }[]).map((j) => j.jobId)).toEqual(['snap-2', 'cont-1']);
    const rest = await cp.call('GET', `/jobs?maxResults=2&nextToken=${all.body.nextToken as string}`);
    expect((rest.body.jobs as { jobId: string }[]).map((j) => j.jobId)).toEqual(['frac', 'install-1']);
    expect(rest.body.nextToken).toBeUndefined();
    const cont = await cp.call('GET', '/jobs?targetSelection=CONTINUOUS');
    expect(cont.body.jobs).toEqual([
      {
        jobArn: `${ARN}:job/cont-1`,
        jobId: 'cont-1',
        targetSelection: 'CONTINUOUS',
        status: 'IN_PROGRESS',
        createdAt: T0 + 10,
        lastUpdatedAt: T0 + 10,
        isConcurrent: false,
      },
    ]);
    const byGroup = await cp.call('GET', '/jobs?thingGroupName=fleet');
    expect((byGroup.body.jobs as { jobId: string; thingGroupId: string }[]).map((j) => j.jobId)).toEqual([
      'cont-1',
      'install-1',
    ]);
    expect((byGroup.body.jobs as { thingGroupId: string }[])[0]?.thingGroupId).toEqual(expect.any(String));
    const inProgress = await cp.call('GET', '/jobs?status=COMPLETED');
    expect(inProgress.body.jobs).toEqual([]);
  });

  it('UpdateJob replaces the given configuration and keeps the rest', async () => {
    const res = await cp.call('PATCH', '/jobs/install-1', {
      description: 'install 1.2, take two',
      timeoutConfig: { inProgressTimeoutInMinutes: 45 },
    });
    expect(res.status).toBe(200);
    const job = (await cp.call('GET', '/jobs/install-1')).body.job as Record<string, unknown>;
    expect(job.description).toBe('install 1.2, take two');
    expect(job.timeoutConfig).toEqual({ inProgressTimeoutInMinutes: 45 });
    expect(job.abortConfig).toBeDefined();
    expect((await cp.call('PATCH', '/jobs/nope', { description: 'x' })).status).toBe(404);
  });

  it('CancelJob without force cancels QUEUED executions and leaves IN_PROGRESS ones; then with force cancels those', async () => {
    await start('install-1', 'd1');
    const res = await cp.call('PUT', '/jobs/install-1/cancel', {
      reasonCode: 'OPERATOR_STOP',
      comment: 'bad build',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      jobArn: `${ARN}:job/install-1`,
      jobId: 'install-1',
      description: 'install 1.2, take two',
    });
    expect(await statuses('install-1')).toEqual({ d1: 'IN_PROGRESS', d2: 'CANCELED', d3: 'CANCELED' });
    const job = (await cp.call('GET', '/jobs/install-1')).body.job as Record<string, unknown>;
    expect(job).toMatchObject({
      status: 'CANCELED',
      forceCanceled: false,
      reasonCode: 'OPERATOR_STOP',
      comment: 'bad build',
      completedAt: T0,
    });
    expect(job.jobProcessDetails).toMatchObject({ numberOfCanceledThings: 2, numberOfInProgressThings: 1 });

    const again = await cp.call('PUT', '/jobs/install-1/cancel');
    expect(again.status).toBe(409);
    expect(again.error).toBe('InvalidStateTransitionException');

    const forced = await cp.call('PUT', '/jobs/install-1/cancel?force=true');
    expect(forced.status).toBe(200);
    expect(await statuses('install-1')).toEqual({ d1: 'CANCELED', d2: 'CANCELED', d3: 'CANCELED' });
    const rows = await cp.t.db.query<{ forceCanceled: boolean; versionNumber: number }>(
      `SELECT force_canceled, version_number FROM job_executions WHERE job_id = 'install-1' AND thing_name = 'd1'`,
    );
    expect(rows[0]).toEqual({ forceCanceled: true, versionNumber: 3 });
    expect(
      ((await cp.call('GET', '/jobs/install-1')).body.job as Record<string, unknown>).forceCanceled,
    ).toBe(true);
  });

  it('CancelJob of a COMPLETED job is InvalidStateTransitionException; of an unknown one ResourceNotFound', async () => {
    await cp.call('PUT', '/jobs/done-1', { targets: ['thing/d4'], document: '{}' });
    await cp.call('PUT', '/things/d4/jobs/done-1/cancel');
    expect(((await cp.call('GET', '/jobs/done-1')).body.job as Record<string, unknown>).status).toBe(
      'COMPLETED',
    );
    const res = await cp.call('PUT', '/jobs/done-1/cancel');
    expect(res.status).toBe(409);
    expect(res.error).toBe('InvalidStateTransitionException');
    expect((await cp.call('PUT', '/jobs/nope/cancel')).error).toBe('ResourceNotFoundException');
  });

  it('DeleteJob refuses an IN_PROGRESS job without force and deletes it with force, notifying its devices', async () => {
    await cp.call('PUT', '/jobs/del-1', { targets: ['thing/d1', 'thing/d2'], document: '{}' });
    const refused = await cp.call('DELETE', '/jobs/del-1');
    expect(refused.status).toBe(409);
    expect(refused.error).toBe('InvalidStateTransitionException');
    expect(Object.keys(await statuses('del-1'))).toHaveLength(2);
    const before = await cp.t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM outbox WHERE kind = 'notify'`,
    );
    expect((await cp.call('DELETE', '/jobs/del-1?force=true')).status).toBe(200);
    expect(await statuses('del-1')).toEqual({});
    expect((await cp.call('GET', '/jobs/del-1')).status).toBe(404);
    const after = await cp.t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM outbox WHERE kind = 'notify'`,
    );
    expect((after[0]?.n ?? 0) - (before[0]?.n ?? 0)).toBe(2);
  });

  it('DeleteJob deletes a CANCELED job and its executions without force', async () => {
    expect((await cp.call('DELETE', '/jobs/install-1')).status).toBe(200);
    expect(await statuses('install-1')).toEqual({});
    expect((await cp.call('DELETE', '/jobs/install-1')).status).toBe(404);
  });

  it('AssociateTargetsWithJob fans out to new things of an IN_PROGRESS CONTINUOUS job only', async () => {
    expect(await statuses('cont-1')).toEqual({ d2: 'QUEUED', d3: 'QUEUED' });
    const res = await cp.call('POST', '/jobs/cont-1/targets', {
      targets: ['thing/d1', 'thing/d2'],
      comment: 'more',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ jobArn: `${ARN}:job/cont-1`, jobId: 'cont-1' });
    expect(await statuses('cont-1')).toEqual({ d1: 'QUEUED', d2: 'QUEUED', d3: 'QUEUED' });
    const job = (await cp.call('GET', '/jobs/cont-1')).body.job as Record<string, unknown>;
    expect(job.targets).toEqual([`${ARN}:thinggroup/fleet`, `${ARN}:thing/d1`, `${ARN}:thing/d2`]);
    const snapshot = await cp.call('POST', '/jobs/snap-2/targets', { targets: ['thing/d1'] });
    expect(snapshot.status).toBe(400);
    expect(snapshot.error).toBe('InvalidRequestException');
    const unknown = await cp.call('POST', '/jobs/cont-1/targets', { targets: ['thing/ghost'] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain('thing/ghost');
    await cp.call('PUT', '/jobs/cont-1/cancel');
    const canceled = await cp.call('POST', '/jobs/cont-1/targets', { targets: ['thing/d4'] });
    expect(canceled.status).toBe(409);
    expect(canceled.error).toBe('InvalidStateTransitionException');
  });

  it('AssociateTargetsWithJob keeps a job at 100 targets at most (LimitExceededException)', async () => {
    const names = Array.from({ length: 60 }, (_, i) => `many-${i}`);
    await insertThings(cp.t.db, names, cp.deps.clock());
    await cp.call('PUT', '/jobs/cont-many', {
      targets: names.map((n) => `thing/${n}`),
      document: '{}',
      targetSelection: 'CONTINUOUS',
    });
    const more = Array.from({ length: 41 }, (_, i) => `thing/many-x${i}`);
    await insertThings(
      cp.t.db,
      more.map((t) => t.slice(6)),
      cp.deps.clock(),
    );
    const res = await cp.call('POST', '/jobs/cont-many/targets', { targets: more });
    expect(res.status).toBe(410);
    expect(res.error).toBe('LimitExceededException');
  });

  it('job templates: create, describe, list; CreateJob from a template substitutes checked parameters', async () => {
    const created = await cp.call('PUT', '/job-templates/download', {
      description: 'download a file',
      document: '{"url":"${aws:iot:parameter:url}","path":"${aws:iot:parameter:path}"}',
      timeoutConfig: { inProgressTimeoutInMinutes: 5 },
      documentParameters: [
        { key: 'url', regex: 'https://.+' },
        { key: 'path', optional: true },
      ],
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({
      jobTemplateArn: `${ARN}:jobtemplate/download`,
      jobTemplateId: 'download',
    });
    const described = await cp.call('GET', '/job-templates/download');
    expect(described.body).toMatchObject({
      jobTemplateArn: `${ARN}:jobtemplate/download`,
      jobTemplateId: 'download',
      description: 'download a file',
      timeoutConfig: { inProgressTimeoutInMinutes: 5 },
      createdAt: T0,
    });
    await cp.call('PUT', '/job-templates/a-first', { description: 'a', document: '{}' });
    const list = await cp.call('GET', '/job-templates?maxResults=1');
    expect(list.body.jobTemplates).toEqual([
      {
        jobTemplateArn: `${ARN}:jobtemplate/a-first`,
        jobTemplateId: 'a-first',
        description: 'a',
        createdAt: T0,
      },
    ]);
    expect(
      (await cp.call('GET', `/job-templates?nextToken=${list.body.nextToken as string}`)).body.jobTemplates,
    ).toHaveLength(1);

    const job = await cp.call('PUT', '/jobs/from-template', {
      targets: ['thing/d4'],
      jobTemplateArn: `${ARN}:jobtemplate/download`,
      documentParameters: { url: 'https://example.com/a"b' },
    });
    expect(job.status).toBe(200);
    const doc = JSON.parse(
      (await cp.call('GET', '/jobs/from-template/job-document')).body.document as string,
    );
    expect(doc).toEqual({ url: 'https://example.com/a"b', path: '' });
    const d = (await cp.call('GET', '/jobs/from-template')).body.job as Record<string, unknown>;
    expect(d).toMatchObject({
      jobTemplateArn: `${ARN}:jobtemplate/download`,
      documentParameters: { url: 'https://example.com/a"b' },
      timeoutConfig: { inProgressTimeoutInMinutes: 5 },
    });

    for (const [params, fragment] of [
      [{}, 'url is required'],
      [{ url: 'ftp://x' }, 'does not match'],
      [{ url: 'https://x', other: 'y' }, 'other is not a parameter'],
    ] as const) {
      const bad = await cp.call('PUT', '/jobs/from-template-bad', {
        targets: ['thing/d4'],
        jobTemplateArn: 'download',
        documentParameters: params,
      });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toContain(fragment);
    }
    expect((await cp.call('GET', '/jobs/from-template-bad')).status).toBe(404);
    const missing = await cp.call('PUT', '/jobs/from-missing', {
      targets: ['thing/d4'],
      jobTemplateArn: 'nope',
    });
    expect(missing.status).toBe(404);

    expect((await cp.call('DELETE', '/job-templates/download')).status).toBe(200);
    expect((await cp.call('GET', '/job-templates/download')).status).toBe(404);
    expect((await cp.call('DELETE', '/job-templates/download')).status).toBe(404);
  });

  it('a template must declare every parameter its document uses', async () => {
    const res = await cp.call('PUT', '/job-templates/undeclared', {
      description: 'x',
      document: '{"a":"${aws:iot:parameter:a}"}',
      documentParameters: [{ key: 'b' }],
    });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('a');
  });
});
