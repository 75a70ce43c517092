import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { minutes, seconds } from '../helpers/workers.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';
import { createWorkers, type Workers } from '../../src/workers/index.js';
import { startNext } from '../../src/service/start-next.js';
import { updateExecution } from '../../src/service/update-execution.js';

const T0 = new Date('2026-05-04T00:00:00Z');
const iso = (d: Date) => d.toISOString().slice(0, 16);

describe.each(BACKENDS)('rollout, scheduling and abort on %s', (backend) => {
  let cp: ControlPlane;
  let workers: Workers;

  /** n things in a group of their own, named prefix-00..; returns the group target. */
  const fleet = async (prefix: string, n: number): Promise<string> => {
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
    await insertThings(cp.t.db, names, T0);
    await insertThingGroup(cp.t.db, { thingGroupName: prefix }, T0);
    await insertGroupMembers(cp.t.db, prefix, names, T0);
    return `thinggroup/${prefix}`;
  };
  const counts = async (jobId: string) =>
    (
      await cp.t.db.query<{ status: string; n: number }>(
        `SELECT status, count(*) AS n FROM job_executions WHERE job_id = $1 GROUP BY status ORDER BY status`,
        [jobId],
      )
    ).reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: r.n }), {});
  const executions = async (jobId: string) =>
    (
      await cp.t.db.query<{ n: number }>(`SELECT count(*) AS n FROM job_executions WHERE job_id = $1`, [
        jobId,
      ])
    )[0]?.n;
  const describeJob = async (jobId: string) => {
    const res = await cp.call('GET', `/jobs/${jobId}`);
    expect(res.status).toBe(200);
    return res.body.job as Record<string, unknown> & { jobProcessDetails: Record<string, unknown> };
  };
  const at = (d: Date) => {
    cp.setNow(d);
    return d;
  };

  beforeAll(async () => {
    cp = await createControlPlane(backend);
    workers = createWorkers(cp.deps, { autoStart: false });
  });
  afterAll(async () => {
    await workers.close();
    await cp.close();
  });

  it('creates executions no faster than maximumPerMinute and reports the rollout while it lasts', async () => {
    const group = await fleet('rate', 25);
    at(T0);
    const created = await cp.call('PUT', '/jobs/rate-job', {
      targets: [group],
      document: '{}',
      jobExecutionsRolloutConfig: { maximumPerMinute: 10 },
    });
    expect(created.status).toBe(200);
    expect(await executions('rate-job')).toBe(10);
    const rolling = await describeJob('rate-job');
    expect(rolling.isConcurrent).toBe(true);
    expect(rolling.jobProcessDetails.processingTargets).toEqual([
      'arn:aws:iot:local:000000000000:thinggroup/rate',
    ]);
    expect(rolling.jobProcessDetails.numberOfQueuedThings).toBe(10);

    expect(await workers.rollout.runOnce(seconds(T0, 59))).toBe(0);
    expect(await workers.rollout.runOnce(seconds(T0, 60))).toBe(10);
    expect(await workers.rollout.runOnce(seconds(T0, 61))).toBe(0);
    expect(await workers.rollout.runOnce(seconds(T0, 120))).toBe(5);
    expect(await executions('rate-job')).toBe(25);
    const done = await describeJob('rate-job');
    expect(done.isConcurrent).toBe(false);
    expect(done.jobProcessDetails.processingTargets).toBeUndefined();
    expect(done.jobProcessDetails.numberOfQueuedThings).toBe(25);
    expect(done.status).toBe('IN_PROGRESS');
  });

  it('grows an exponential rate by incrementFactor per quantum of notified things', async () => {
    const group = await fleet('expo', 20);
    at(T0);
    await cp.call('PUT', '/jobs/expo-job', {
      targets: [group],
      document: '{}',
      jobExecutionsRolloutConfig: {
        maximumPerMinute: 100,
        exponentialRate: {
          baseRatePerMinute: 2,
          incrementFactor: 2,
          rateIncreaseCriteria: { numberOfNotifiedThings: 2 },
        },
      },
    });
    expect(await executions('expo-job')).toBe(2);
    // 2 notified: one quantum, rate 4.
    await workers.rollout.runOnce(seconds(T0, 60));
    expect(await executions('expo-job')).toBe(6);
    // 6 notified: three quanta, rate 16, capped by what is left.
    await workers.rollout.runOnce(seconds(T0, 120));
    expect(await executions('expo-job')).toBe(20);
    expect((await describeJob('expo-job')).isConcurrent).toBe(false);
  });

  it('keeps a job SCHEDULED until startTime, then CANCEL at endTime cancels QUEUED and leaves IN_PROGRESS', async () => {
    const group = await fleet('sched', 3);
    at(T0);
    const created = await cp.call('PUT', '/jobs/sched-job', {
      targets: [group],
      document: '{}',
      schedulingConfig: {
        startTime: iso(minutes(T0, 40)),
        endTime: iso(minutes(T0, 120)),
        endBehavior: 'CANCEL',
      },
    });
    expect(created.status).toBe(200);
    expect((await describeJob('sched-job')).status).toBe('SCHEDULED');
    expect(await workers.runOnce(minutes(T0, 39))).toBe(0);
    expect(await executions('sched-job')).toBe(0);

    at(minutes(T0, 40));
    await workers.runOnce(minutes(T0, 40));
    expect((await describeJob('sched-job')).status).toBe('IN_PROGRESS');
    expect(await counts('sched-job')).toEqual({ QUEUED: 3 });
    await startNext(cp.deps, 'sched-00', {});

    at(minutes(T0, 120));
    await workers.runOnce(minutes(T0, 120));
    const ended = await describeJob('sched-job');
    expect(ended).toMatchObject({
      status: 'CANCELED',
      reasonCode: 'SCHEDULED_END_TIME_REACHED',
      forceCanceled: false,
    });
    expect(await counts('sched-job')).toEqual({ CANCELED: 2, IN_PROGRESS: 1 });
    const events = await cp.t.db.query<{ topic: string }>(
      `SELECT topic FROM outbox WHERE kind = 'event' AND job_id = 'sched-job' ORDER BY id`,
    );
    expect(events.map((e) => e.topic)).toEqual([
      '$aws/events/jobExecution/sched-job/canceled',
      '$aws/events/jobExecution/sched-job/canceled',
      '$aws/events/job/sched-job/canceled',
    ]);
  });

  it('FORCE_CANCEL at endTime cancels IN_PROGRESS executions too', async () => {
    const group = await fleet('force', 2);
    at(T0);
    await cp.call('PUT', '/jobs/force-job', {
      targets: [group],
      document: '{}',
      schedulingConfig: { endTime: iso(minutes(T0, 60)), endBehavior: 'FORCE_CANCEL' },
    });
    await startNext(cp.deps, 'force-00', {});
    at(minutes(T0, 60));
    await workers.rollout.runOnce(minutes(T0, 60));
    expect(await counts('force-job')).toEqual({ CANCELED: 2 });
    expect(await describeJob('force-job')).toMatchObject({ status: 'CANCELED', forceCanceled: true });
  });

  it('STOP_ROLLOUT at endTime releases nothing more and the job completes when its executions end', async () => {
    const group = await fleet('stop', 5);
    at(T0);
    await cp.call('PUT', '/jobs/stop-job', {
      targets: [group],
      document: '{}',
      jobExecutionsRolloutConfig: { maximumPerMinute: 2 },
      schedulingConfig: { endTime: iso(minutes(T0, 30)), endBehavior: 'STOP_ROLLOUT' },
    });
    expect(await executions('stop-job')).toBe(2);
    for (const thing of ['stop-00', 'stop-01']) {
      await startNext(cp.deps, thing, {});
      await updateExecution(cp.deps, { thingName: thing, jobId: 'stop-job', status: 'SUCCEEDED' });
    }
    expect((await describeJob('stop-job')).status).toBe('IN_PROGRESS');
    at(minutes(T0, 30));
    await workers.rollout.runOnce(minutes(T0, 30));
    expect(await executions('stop-job')).toBe(2);
    const job = await describeJob('stop-job');
    expect(job).toMatchObject({ status: 'COMPLETED', isConcurrent: false });
    expect(job.jobProcessDetails.numberOfSucceededThings).toBe(2);
  });

  it('rolls out only inside a maintenance window', async () => {
    const group = await fleet('window', 3);
    at(T0);
    await cp.call('PUT', '/jobs/window-job', {
      targets: [group],
      document: '{}',
      schedulingConfig: { maintenanceWindows: [{ startTime: 'cron(0 2 * * ? *)', durationInMinutes: 60 }] },
    });
    expect((await describeJob('window-job')).status).toBe('IN_PROGRESS');
    expect(await executions('window-job')).toBe(0);
    expect(await workers.rollout.runOnce(minutes(T0, 119))).toBe(0);
    expect(await workers.rollout.runOnce(minutes(T0, 120))).toBe(3);
    expect((await describeJob('window-job')).isConcurrent).toBe(false);
  });

  it('aborts a job when its failure criterion trips: QUEUED canceled, IN_PROGRESS left alone', async () => {
    const group = await fleet('abort', 8);
    at(T0);
    await cp.call('PUT', '/jobs/abort-job', {
      targets: [group],
      document: '{}',
      abortConfig: {
        criteriaList: [
          { failureType: 'FAILED', action: 'CANCEL', thresholdPercentage: 50, minNumberOfExecutedThings: 4 },
        ],
      },
    });
    const finish = async (thing: string, status: string) => {
      await startNext(cp.deps, thing, {});
      await updateExecution(cp.deps, { thingName: thing, jobId: 'abort-job', status });
    };
    await finish('abort-00', 'SUCCEEDED');
    await finish('abort-01', 'FAILED');
    await finish('abort-02', 'FAILED');
    await startNext(cp.deps, 'abort-03', {});
    // 3 executed (below the minimum of 4): nothing happens.
    expect(await workers.rollout.runOnce(T0)).toBe(0);
    await finish('abort-04', 'SUCCEEDED');
    // 4 executed, 2 FAILED = 50%: the criterion trips.
    expect(await workers.rollout.runOnce(T0)).toBe(1);
    const job = await describeJob('abort-job');
    expect(job).toMatchObject({ status: 'CANCELED', reasonCode: 'ABORT_CRITERIA_MET_FAILED' });
    expect(job.comment).toContain('2 of 4 executed things ended FAILED');
    expect(await counts('abort-job')).toEqual({ CANCELED: 3, FAILED: 2, IN_PROGRESS: 1, SUCCEEDED: 2 });
    expect(await workers.rollout.runOnce(T0)).toBe(0);
  });

  it('deleting a thing removes its pending execution, with a removed event, and the job completes', async () => {
    const group = await fleet('gone', 2);
    at(T0);
    await cp.call('PUT', '/jobs/gone-job', { targets: [group], document: '{}' });
    await startNext(cp.deps, 'gone-00', {});
    await updateExecution(cp.deps, { thingName: 'gone-00', jobId: 'gone-job', status: 'SUCCEEDED' });
    const deleted = await cp.call('DELETE', '/things/gone-01');
    expect(deleted.status).toBe(200);
    const events = await cp.t.db.query<{ topic: string; payload: Record<string, unknown> }>(
      `SELECT topic, payload FROM events WHERE job_id = 'gone-job' ORDER BY id`,
    );
    expect(events.map((e) => e.topic)).toEqual([
      '$aws/events/jobExecution/gone-job/succeeded',
      '$aws/events/jobExecution/gone-job/removed',
      '$aws/events/job/gone-job/completed',
    ]);
    expect(events[1]?.payload).toMatchObject({
      status: 'REMOVED',
      thingArn: 'arn:aws:iot:local:000000000000:thing/gone-01',
    });
    expect(events[2]?.payload.jobProcessDetails).toMatchObject({
      numberOfSucceededThings: 1,
      numberOfRemovedThings: 1,
    });
  });

  it('a thing that joined a CONTINUOUS job during its rollout is not given a second execution by it', async () => {
    const group = await fleet('cont', 2);
    at(T0);
    await cp.call('PUT', '/jobs/cont-job', {
      targets: [group],
      document: '{}',
      targetSelection: 'CONTINUOUS',
      jobExecutionsRolloutConfig: { maximumPerMinute: 1 },
    });
    expect(await counts('cont-job')).toEqual({ QUEUED: 1 });
    const membership = { thingGroupName: 'cont', thingName: 'cont-01' };
    expect((await cp.call('PUT', '/thing-groups/removeThingFromThingGroup', membership)).status).toBe(200);
    expect((await cp.call('PUT', '/thing-groups/addThingToThingGroup', membership)).status).toBe(200);
    expect(await counts('cont-job')).toEqual({ QUEUED: 2 });
    await startNext(cp.deps, 'cont-01', {});
    await updateExecution(cp.deps, { thingName: 'cont-01', jobId: 'cont-job', status: 'SUCCEEDED' });
    await workers.rollout.runOnce(minutes(T0, 1));
    expect(await counts('cont-job')).toEqual({ QUEUED: 1, SUCCEEDED: 1 });
    expect((await describeJob('cont-job')).isConcurrent).toBe(false);
  });

  it('a job whose stored maintenance window cannot be read is logged and the other jobs still roll out', async () => {
    const bad = await fleet('badcron', 2);
    const good = await fleet('goodcron', 2);
    at(T0);
    const window = (startTime: string) => ({ maintenanceWindows: [{ startTime, durationInMinutes: 60 }] });
    expect(
      (
        await cp.call('PUT', '/jobs/bad-cron-job', {
          targets: [bad],
          document: '{}',
          schedulingConfig: window('cron(0 1 ? * 1 *)'),
        })
      ).status,
    ).toBe(200);
    // A row written before CreateJob and the rollout read cron the same way: AWS has no weekday 0.
    await cp.t.db.query(`UPDATE jobs SET scheduling_config = $1::jsonb WHERE job_id = 'bad-cron-job'`, [
      window('cron(0 1 ? * 0 *)'),
    ]);
    await cp.call('PUT', '/jobs/good-after-bad', {
      targets: [good],
      document: '{}',
      jobExecutionsRolloutConfig: { maximumPerMinute: 1 },
    });
    expect(await executions('good-after-bad')).toBe(1);

    const logged: Record<string, unknown>[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const watched = createWorkers({ ...cp.deps, log }, { autoStart: false });
    try {
      await watched.rollout.runOnce(minutes(T0, 1));
    } finally {
      await watched.close();
    }
    expect(await executions('good-after-bad')).toBe(2);
    expect(await executions('bad-cron-job')).toBe(0);
    expect(logged).toContainEqual(
      expect.objectContaining({
        jobId: 'bad-cron-job',
        msg: 'rollout of a job failed; the other jobs go on',
      }),
    );
    expect((await cp.call('PUT', '/jobs/bad-cron-job/cancel', {})).status).toBe(200);
  });
});
