import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { operatorClient } from '../helpers/operator.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';

const at = (iso: string) => new Date(`2026-05-01T${iso}Z`);
const epoch = (iso: string) => at(iso).getTime() / 1000;

describe.each(BACKENDS)('recurring jobs (job schedules) on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  let now = at('00:10:00');
  const start = () => startTestServer({ db: t.db, clock: () => now, workers: { autoStart: false } });
  const { rest, cli } = operatorClient(() => app.addresses.http);
  const jobIds = async (prefix: string) =>
    ((await rest('GET', '/jobs?maxResults=250')).body.jobs as { jobId: string }[])
      .map((j) => j.jobId)
      .filter((id) => id.startsWith(prefix))
      .sort();
  const tick = (iso: string) => {
    now = at(iso);
    return app.workers.schedules.runOnce(now);
  };
  const schedule = (id: string, body: object) =>
    rest('PUT', `/job-schedules/${id}`, {
      jobTemplateArn: 'backup',
      targets: ['thing/sched-1'],
      ...body,
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await start();
    expect((await rest('POST', '/things/sched-1')).status).toBe(200);
    expect((await rest('POST', '/things/sched-2')).status).toBe(200);
    const template = await rest('PUT', '/job-templates/backup', {
      description: 'nightly backup',
      document: JSON.stringify({ op: 'backup', to: '${aws:iot:parameter:to}' }),
    });
    expect(template.status).toBe(200);
    device = await connectDevice(app.addresses.mqtt, { clientId: 'sched-1' });
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('creates one job per tick from the template, once, and notifies the device', async () => {
    const put = await schedule('hourly', {
      scheduleExpression: 'rate(1 hour)',
      documentParameters: { to: 's3://bucket' },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      scheduleId: 'hourly',
      state: 'ENABLED',
      concurrencyPolicy: 'SKIP',
      scheduleExpressionTimezone: 'UTC',
      jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/backup',
      targets: ['arn:aws:iot:local:000000000000:thing/sched-1'],
      nextRunAt: epoch('01:00:00'),
    });
    expect(await tick('00:59:59')).toBe(0);
    await device.subscribeAsync('$aws/things/sched-1/jobs/notify-next', { qos: 1 });
    const announced = waitForMessage(device, '$aws/things/sched-1/jobs/notify-next');
    expect(await tick('01:00:00')).toBe(1);
    expect((await announced).json.execution).toMatchObject({
      jobId: 'hourly-20260501T0100Z',
      jobDocument: { op: 'backup', to: 's3://bucket' },
    });
    expect(await tick('01:00:30')).toBe(0);
    expect(await jobIds('hourly-')).toEqual(['hourly-20260501T0100Z']);
    expect((await rest('GET', '/jobs/hourly-20260501T0100Z')).body.job).toMatchObject({
      jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/backup',
      jobTemplateVersion: 1,
    });
  });

  it('skips a tick while the previous run is active under SKIP, and lists past runs newest first', async () => {
    expect(await tick('02:00:00')).toBe(1);
    expect(await jobIds('hourly-')).toEqual(['hourly-20260501T0100Z']);
    const done = await deviceRequest(device, '$aws/things/sched-1/jobs/hourly-20260501T0100Z/update', {
      status: 'SUCCEEDED',
    });
    expect(done.outcome).toBe('accepted');
    expect(await tick('03:00:00')).toBe(1);
    expect(await jobIds('hourly-')).toEqual(['hourly-20260501T0100Z', 'hourly-20260501T0300Z']);
    const runs = await rest('GET', '/job-schedules/hourly/runs');
    expect(runs.body.runs).toMatchObject([
      {
        scheduledAt: epoch('03:00:00'),
        jobId: 'hourly-20260501T0300Z',
        outcome: 'CREATED',
        jobStatus: 'IN_PROGRESS',
      },
      { scheduledAt: epoch('02:00:00'), jobId: 'hourly-20260501T0200Z', outcome: 'SKIPPED' },
      {
        scheduledAt: epoch('01:00:00'),
        jobId: 'hourly-20260501T0100Z',
        outcome: 'CREATED',
        jobStatus: 'COMPLETED',
      },
    ]);
    expect(runs.body.runs[1]).not.toHaveProperty('jobStatus');
    const paged = await rest('GET', '/job-schedules/hourly/runs?maxResults=2');
    const next = await rest('GET', `/job-schedules/hourly/runs?nextToken=${String(paged.body.nextToken)}`);
    expect(next.body.runs.map((r: { outcome: string }) => r.outcome)).toEqual(['CREATED']);
  });

  it('after a restart, creates a tick missed while down once (not once per missed tick)', async () => {
    expect(
      (
        await schedule('often', {
          scheduleExpression: 'rate(15 minutes)',
          concurrencyPolicy: 'ALLOW',
          documentParameters: { to: 'x' },
        })
      ).body.nextRunAt,
    ).toBe(epoch('03:15:00'));
    await app.close();
    now = at('05:40:00');
    app = await start();
    expect(await app.workers.schedules.runOnce(now)).toBeGreaterThan(0);
    expect(await app.workers.schedules.runOnce(now)).toBe(0);
    expect(await jobIds('often-')).toEqual(['often-20260501T0530Z']);
    expect((await rest('GET', '/job-schedules/often')).body.nextRunAt).toBe(epoch('05:45:00'));
  });

  it('creates a tick once when several instances run the worker at the same moment', async () => {
    const second = await start();
    try {
      now = at('06:00:00');
      await Promise.all([app.workers.schedules.runOnce(now), second.workers.schedules.runOnce(now)]);

      expect(await jobIds('often-')).toEqual(['often-20260501T0530Z', 'often-20260501T0600Z']);
      expect(await jobIds('hourly-')).toEqual(['hourly-20260501T0100Z', 'hourly-20260501T0300Z']);
      expect((await rest('GET', '/job-schedules/often/runs?maxResults=1')).body.runs).toMatchObject([
        { jobId: 'often-20260501T0600Z', outcome: 'CREATED' },
      ]);
    } finally {
      await second.close();
    }
  });

  it('computes cron ticks in the schedule timezone', async () => {
    now = at('06:10:00');
    const res = await schedule('paris', {
      scheduleExpression: 'cron(30 9 * * ? *)',
      scheduleExpressionTimezone: 'Europe/Paris',
      concurrencyPolicy: 'ALLOW',
      documentParameters: { to: 'p' },
    });
    // 09:30 in Paris (CEST, UTC+2) is 07:30 UTC.
    expect(res.body.nextRunAt).toBe(epoch('07:30:00'));
    expect(await tick('07:30:00')).toBeGreaterThanOrEqual(1);
    expect(await jobIds('paris-')).toEqual(['paris-20260501T0730Z']);
    const plain = await schedule('plain-cron', {
      scheduleExpression: '0 */4 * * *',
      documentParameters: { to: 'p' },
    });
    expect(plain.body.nextRunAt).toBe(epoch('08:00:00'));
  });

  it('pauses and resumes: no job while paused, ticks restart after the resume', async () => {
    expect((await rest('PUT', '/job-schedules/often/pause')).body).toMatchObject({ state: 'PAUSED' });
    expect((await rest('GET', '/job-schedules/often')).body).not.toHaveProperty('nextRunAt');
    const twice = await rest('PUT', '/job-schedules/often/pause');
    expect(twice.status).toBe(409);
    expect(twice.error).toBe('InvalidStateTransitionException');
    const before = await jobIds('often-');
    expect(before).toEqual(['often-20260501T0530Z', 'often-20260501T0600Z', 'often-20260501T0730Z']);
    await tick('09:00:00');
    expect(await jobIds('often-')).toEqual(before);
    const resumed = await rest('PUT', '/job-schedules/often/resume');
    expect(resumed.body).toMatchObject({ state: 'ENABLED', nextRunAt: epoch('09:15:00') });
    await tick('09:15:00');
    expect(await jobIds('often-')).toEqual([...before, 'often-20260501T0915Z']);
    expect((await rest('PUT', '/job-schedules/often/resume')).status).toBe(409);
  });

  it('records a tick CreateJob refuses as FAILED with the reason and moves on', async () => {
    now = at('09:20:00');
    await schedule('orphan', {
      scheduleExpression: 'rate(1 hour)',
      targets: ['thing/sched-2'],
      documentParameters: { to: 'o' },
    });
    expect((await rest('DELETE', '/things/sched-2')).status).toBe(200);
    await tick('10:00:00');
    const runs = await rest('GET', '/job-schedules/orphan/runs');
    expect(runs.body.runs).toMatchObject([{ outcome: 'FAILED', jobId: 'orphan-20260501T1000Z' }]);
    expect(String(runs.body.runs[0].reason)).toContain('sched-2');
    expect((await rest('GET', '/job-schedules/orphan')).body.nextRunAt).toBe(epoch('11:00:00'));
    expect((await rest('DELETE', '/job-schedules/orphan')).status).toBe(200);
    expect((await rest('GET', '/job-schedules/orphan')).status).toBe(404);
    expect((await rest('GET', '/job-schedules/orphan/runs')).status).toBe(404);
  });

  it('refuses a bad expression, timezone, template or id with a 4xx naming it', async () => {
    const cases: [object, number, string][] = [
      [{ scheduleExpression: 'rate(0 hours)' }, 400, 'rate'],
      [{ scheduleExpression: 'every day' }, 400, 'scheduleExpression'],
      [{ scheduleExpression: 'cron(0 3 * * ? 2027)' }, 400, 'year'],
      [
        { scheduleExpression: 'rate(1 day)', scheduleExpressionTimezone: 'Mars/Olympus' },
        400,
        'Mars/Olympus',
      ],
      [{ scheduleExpression: 'rate(1 day)', jobTemplateArn: 'missing' }, 404, 'missing'],
      [{ scheduleExpression: 'rate(1 day)', jobTemplateVersion: 5 }, 404, 'version 5'],
    ];
    for (const [body, status, text] of cases) {
      const res = await schedule('bad', body);
      expect(res.status).toBe(status);
      expect(String(res.body.message)).toContain(text);
    }
    expect((await schedule('x'.repeat(50), { scheduleExpression: 'rate(1 day)' })).status).toBe(400);
    expect((await rest('GET', '/job-schedules/bad')).status).toBe(404);
  });

  it('is driven from the CLI', async () => {
    now = at('11:10:00');
    const put = await cli([
      'schedules',
      'put',
      'cli-sched',
      '--expression',
      'rate(30 minutes)',
      '--template',
      'backup',
      '--target',
      'thing/sched-1',
      '--param',
      'to=cli',
      '--concurrency',
      'ALLOW',
    ]);
    expect(put).toMatchObject({
      code: 0,
      out: 'cli-sched: ENABLED, rate(30 minutes) (UTC), next run 2026-05-01T11:30:00Z\n',
    });
    const listed = await cli(['schedules', 'list']);
    expect(listed.out).toMatch(
      /cli-sched\s+ENABLED\s+rate\(30 minutes\)\s+UTC\s+ALLOW\s+2026-05-01T11:30:00Z/,
    );
    await tick('11:30:00');
    const runs = await cli(['schedules', 'runs', 'cli-sched']);
    expect(runs.out).toMatch(/2026-05-01T11:30:00Z\s+cli-sched-20260501T1130Z\s+CREATED\s+IN_PROGRESS/);
    expect((await cli(['schedules', 'pause', 'cli-sched'])).out).toBe(
      'cli-sched: PAUSED, rate(30 minutes) (UTC), next run none\n',
    );
    expect((await cli(['schedules', 'resume', 'cli-sched'])).code).toBe(0);
    expect((await cli(['schedules', 'delete', 'cli-sched'])).out).toBe('deleted job schedule cli-sched\n');
    expect((await cli(['schedules', 'describe', 'cli-sched'])).code).toBe(1);
  });
});
