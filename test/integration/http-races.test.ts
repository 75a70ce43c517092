import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { updateExecution } from '../../src/service/update-execution.js';
import { FleetJobsError } from '../../src/protocol/errors.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';

/**
 * Concurrent changes never double-apply ([protocol §4]). On PostgreSQL the requests really run in parallel on a pool
 * of connections; on PGlite (one connection) they interleave between statements.
 */
describe.each(BACKENDS)('concurrent changes over REST on %s', (backend) => {
  let cp: ControlPlane;
  const THINGS = Array.from({ length: 50 }, (_, i) => `r-${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    cp = await createControlPlane(backend, { max: 20 });
    const now = cp.deps.clock();
    await insertThings(cp.t.db, THINGS, now);
    await insertThingGroup(cp.t.db, { thingGroupName: 'racers' }, now);
    await insertGroupMembers(cp.t.db, 'racers', THINGS, now);
  });
  afterAll(() => cp.close());

  const createJob = async (jobId: string) => {
    const res = await cp.call('PUT', `/jobs/${jobId}`, { targets: ['thinggroup/racers'], document: '{}' });
    expect(res.status).toBe(200);
  };
  const rows = (jobId: string) =>
    cp.t.db.query<{ thingName: string; status: string; versionNumber: number }>(
      `SELECT thing_name, status, version_number FROM job_executions WHERE job_id = $1 ORDER BY thing_name`,
      [jobId],
    );
  /** notify rows written for the job's things after the job was created. */
  const notifyCount = async (sinceId: number) =>
    (
      await cp.t.db.query<{ n: number }>(
        `SELECT count(*) AS n FROM outbox WHERE kind = 'notify' AND id > $1`,
        [sinceId],
      )
    )[0]?.n ?? 0;
  /** A cancel may lose the race to changes that finished every execution first: the job is then COMPLETED. */
  const expectCanceledOrCompleted = async (
    jobId: string,
    cancel: { status: number; error: string | undefined } | undefined,
  ) => {
    const job = (await cp.call('GET', `/jobs/${jobId}`)).body.job as Record<string, unknown>;
    if (cancel?.status === 200) {
      expect(job.status).toBe('CANCELED');
    } else {
      expect(cancel?.error).toBe('InvalidStateTransitionException');
      expect(job.status).toBe('COMPLETED');
    }
  };
  const lastOutboxId = async () =>
    (await cp.t.db.query<{ id: number | null }>(`SELECT max(id) AS id FROM outbox`))[0]?.id ?? 0;

  it('of two concurrent CancelJob, one applies and the other is InvalidStateTransition', async () => {
    await createJob('race-cancel');
    const mark = await lastOutboxId();
    const results = await Promise.all([
      cp.call('PUT', '/jobs/race-cancel/cancel'),
      cp.call('PUT', '/jobs/race-cancel/cancel'),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)?.error).toBe('InvalidStateTransitionException');
    const after = await rows('race-cancel');
    expect(after).toHaveLength(THINGS.length);
    expect(after.every((r) => r.status === 'CANCELED' && r.versionNumber === 2)).toBe(true);
    expect(await notifyCount(mark)).toBe(THINGS.length);
    const job = (await cp.call('GET', '/jobs/race-cancel')).body.job as Record<string, unknown>;
    expect(job).toMatchObject({
      status: 'CANCELED',
      jobProcessDetails: { numberOfCanceledThings: THINGS.length },
    });
  });

  it('of ten concurrent CancelJobExecution with the same expectedVersion, exactly one applies', async () => {
    await createJob('race-exec');
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        cp.call('PUT', '/things/r-00/jobs/race-exec/cancel', { expectedVersion: 1 }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    expect((await rows('race-exec'))[0]).toEqual({ thingName: 'r-00', status: 'CANCELED', versionNumber: 2 });
  });

  it('CancelJob racing CancelJobExecution on every thing cancels each execution once', async () => {
    await createJob('race-mixed');
    const mark = await lastOutboxId();
    const results = await Promise.all([
      cp.call('PUT', '/jobs/race-mixed/cancel'),
      ...THINGS.map((n) => cp.call('PUT', `/things/${n}/jobs/race-mixed/cancel`)),
    ]);
    await expectCanceledOrCompleted('race-mixed', results[0]);
    for (const r of results.slice(1)) expect([200, 409]).toContain(r.status);
    const after = await rows('race-mixed');
    expect(after.every((r) => r.status === 'CANCELED' && r.versionNumber === 2)).toBe(true);
    expect(await notifyCount(mark)).toBe(THINGS.length);
  });

  it('a forced CancelJob racing device updates: each execution ends SUCCEEDED or CANCELED, changed once', async () => {
    await createJob('race-device');
    // Every device has started its execution (version 2).
    await cp.t.db.query(
      `UPDATE job_executions SET status = 'IN_PROGRESS', version_number = 2, started_at = queued_at
       WHERE job_id = 'race-device'`,
    );
    // Staggered so that some updates land before the cancel takes its locks and some after.
    const device = (thingName: string, i: number) =>
      new Promise((r) => setTimeout(r, i)).then(() =>
        updateExecution(cp.deps, {
          thingName,
          jobId: 'race-device',
          status: 'SUCCEEDED',
          expectedVersion: 2,
        }).then(
          () => 'ok',
          (err: unknown) => (err instanceof FleetJobsError ? err.kind : 'error'),
        ),
      );
    const [cancel, ...devices] = await Promise.all([
      cp.call('PUT', '/jobs/race-device/cancel?force=true'),
      ...THINGS.map(device),
    ]);
    await expectCanceledOrCompleted('race-device', cancel);
    const after = await rows('race-device');
    for (const r of after) {
      expect(['SUCCEEDED', 'CANCELED']).toContain(r.status);
      expect(r.versionNumber).toBe(3);
    }
    const succeeded = after.filter((r) => r.status === 'SUCCEEDED').length;
    expect(devices.filter((d) => d === 'ok')).toHaveLength(succeeded);
    expect(devices.filter((d) => d !== 'ok').every((d) => d === 'InvalidStateTransition')).toBe(true);
  });

  it('a forced CancelJob racing DeleteThing: each execution ends CANCELED or REMOVED, changed once', async () => {
    const victims = ['v-1', 'v-2', 'v-3', 'v-4'];
    for (const n of victims) await cp.call('POST', `/things/${n}`);
    await cp.call('PUT', '/jobs/race-delete', { targets: victims.map((n) => `thing/${n}`), document: '{}' });
    const results = await Promise.all([
      cp.call('PUT', '/jobs/race-delete/cancel?force=true'),
      ...victims.map((n) => cp.call('DELETE', `/things/${n}`)),
    ]);
    await expectCanceledOrCompleted('race-delete', results[0]);
    expect(results.slice(1).every((r) => r.status === 200)).toBe(true);
    for (const r of await rows('race-delete')) {
      expect(['CANCELED', 'REMOVED']).toContain(r.status);
      expect(r.versionNumber).toBe(2);
    }
  });
  it('things joining a group while a CONTINUOUS job for it is created each get exactly one execution', async () => {
    const joiners = Array.from({ length: 30 }, (_, i) => `j-${String(i).padStart(2, '0')}`);
    await cp.call('POST', '/thing-groups/joining');
    for (const n of joiners) await cp.call('POST', `/things/${n}`);
    // Half are members before the job exists; the other half join while it is being created.
    for (const n of joiners.slice(0, 15)) {
      await cp.call('PUT', '/thing-groups/addThingToThingGroup', { thingGroupName: 'joining', thingName: n });
    }
    const results = await Promise.all([
      cp.call('PUT', '/jobs/race-join', {
        targets: ['thinggroup/joining'],
        document: '{}',
        targetSelection: 'CONTINUOUS',
      }),
      ...joiners
        .slice(15)
        .map((n) =>
          cp.call('PUT', '/thing-groups/addThingToThingGroup', { thingGroupName: 'joining', thingName: n }),
        ),
    ]);
    expect(results.every((r) => r.status === 200)).toBe(true);
    const after = await rows('race-join');
    expect(after.map((r) => r.thingName)).toEqual(joiners);
    expect(after.every((r) => r.status === 'QUEUED' && r.versionNumber === 1)).toBe(true);
  });
});
