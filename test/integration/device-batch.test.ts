/**
 * Device writes (start-next, update) that arrive together share one statement (src/service/device-batch.ts).
 * These tests drive concurrent requests over MQTT and check that batching shows in the count of batch statements
 * and nowhere else: every reply, error code and per-thing order is what each request would get alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import type { Db, Queryable } from '../../src/store/db.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

const T0 = 1_767_225_600;

/**
 * Counts device batch statements (fj_device_batch calls), and fails every statement that names the poisoned thing
 * while one is set: a database error confined to one device's request.
 */
function instrumentedDb(db: Db) {
  let batches = 0;
  let poisoned: string | undefined;
  const names = (params: readonly unknown[] = []) =>
    params.flatMap((p) => (Array.isArray(p) ? (p as unknown[]) : [p]));
  const guard = <Q extends Queryable>(q: Q): Q => ({
    ...q,
    query: (text: string, params?: readonly unknown[]) => {
      if (text.includes('fj_device_batch(')) batches++;
      return poisoned !== undefined && names(params).includes(poisoned)
        ? Promise.reject(new Error(`injected failure for ${poisoned}`))
        : q.query(text, params);
    },
  });
  const wrapped: Db = {
    ...guard(db),
    kind: db.kind,
    transaction: (fn) => db.transaction((tx) => fn(guard(tx))),
    close: () => db.close(),
  };
  return {
    db: wrapped,
    batches: () => batches,
    poison: (thing: string | undefined) => (poisoned = thing),
  };
}

describe.each(BACKENDS)('device write batching on %s', (backend) => {
  let t: TestDb;
  let store: ReturnType<typeof instrumentedDb>;
  let app: FleetJobs;
  let device: MqttClient;
  const now = new Date(T0 * 1000);
  const rootOf = (thing: string) => `$aws/things/${thing}/jobs`;
  const fleet = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  const jobFor = (jobId: string, things: string[]) =>
    createJob(app.deps, {
      jobId,
      targets: things.map((th) => `thing/${th}`),
      document: JSON.stringify({ op: jobId }),
    });
  const statusOf = async (thing: string, jobId: string) => {
    const rows = await t.db.query<{ status: string; versionNumber: number }>(
      `SELECT status, version_number FROM job_executions WHERE thing_name = $1 AND job_id = $2`,
      [thing, jobId],
    );
    return rows[0];
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    store = instrumentedDb(t.db);
    app = await startTestServer({ db: store.db, clock: () => now, workers: { autoStart: false } });
    // Auth is off: one client may speak for every thing, so requests of many things arrive back to back.
    device = await connectDevice(app.addresses.mqtt, { clientId: 'batch-device' });
    // Every request in flight listens for its own reply.
    device.setMaxListeners(0);
  });
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('start-next of 40 things at once: fewer batch statements than requests, each thing claims its own head', async () => {
    const things = fleet('claim', 40);
    await insertThings(t.db, things, now);
    await jobFor('claim-a', things);
    await jobFor('claim-b', things);
    const before = store.batches();
    const replies = await Promise.all(
      things.map((th) =>
        deviceRequest(device, `${rootOf(th)}/start-next`, { clientToken: th, statusDetails: { by: th } }),
      ),
    );
    const used = store.batches() - before;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(things.length);
    replies.forEach((r, i) => {
      expect(r.outcome).toBe('accepted');
      expect(r.json.clientToken).toBe(things[i]);
      expect(r.json.execution).toMatchObject({
        jobId: 'claim-a',
        status: 'IN_PROGRESS',
        versionNumber: 2,
        executionNumber: 1,
        statusDetails: { by: things[i] },
        jobDocument: { op: 'claim-a' },
      });
    });
    for (const th of things) {
      expect(await statusOf(th, 'claim-a')).toEqual({ status: 'IN_PROGRESS', versionNumber: 2 });
      expect(await statusOf(th, 'claim-b')).toEqual({ status: 'QUEUED', versionNumber: 1 });
    }
  });

  it('a rejected update in a batch changes nothing and leaves the accepted ones untouched', async () => {
    const things = fleet('mixed', 20);
    await insertThings(t.db, things, now);
    await jobFor('mixed-a', things);
    await Promise.all(things.map((th) => deviceRequest(device, `${rootOf(th)}/start-next`, {})));
    const replies = await Promise.all(
      things.map((th, i) =>
        i % 4 === 3
          ? deviceRequest(device, `${rootOf(th)}/no-such-job/update`, {
              clientToken: th,
              status: 'SUCCEEDED',
            })
          : deviceRequest(device, `${rootOf(th)}/mixed-a/update`, {
              clientToken: th,
              status: 'SUCCEEDED',
              expectedVersion: i % 2 === 0 ? '2' : '7',
              includeJobExecutionState: true,
            }),
      ),
    );
    for (const [i, r] of replies.entries()) {
      const th = things[i] as string;
      expect(r.json.clientToken).toBe(th);
      if (i % 4 === 3) {
        expect(r.outcome).toBe('rejected');
        expect(r.json.code).toBe('ResourceNotFound');
        expect(await statusOf(th, 'mixed-a')).toEqual({ status: 'IN_PROGRESS', versionNumber: 2 });
      } else if (i % 2 === 0) {
        expect(r.outcome).toBe('accepted');
        expect(r.json.executionState).toMatchObject({ status: 'SUCCEEDED', versionNumber: 3 });
        expect(await statusOf(th, 'mixed-a')).toEqual({ status: 'SUCCEEDED', versionNumber: 3 });
      } else {
        expect(r.outcome).toBe('rejected');
        expect(r.json.code).toBe('VersionMismatch');
        expect(r.json.executionState).toMatchObject({ status: 'IN_PROGRESS', versionNumber: 2 });
        expect(await statusOf(th, 'mixed-a')).toEqual({ status: 'IN_PROGRESS', versionNumber: 2 });
      }
    }
  });

  it("keeps each thing's order: a start-next sent right behind an update sees the update", async () => {
    const things = fleet('order', 10);
    await insertThings(t.db, things, now);
    await jobFor('order-1', things);
    await jobFor('order-2', things);
    await Promise.all(things.map((th) => deviceRequest(device, `${rootOf(th)}/start-next`, {})));
    const replies = await Promise.all(
      things.flatMap((th) => [
        deviceRequest(device, `${rootOf(th)}/order-1/update`, {
          clientToken: `u-${th}`,
          status: 'SUCCEEDED',
        }),
        deviceRequest(device, `${rootOf(th)}/start-next`, { clientToken: `s-${th}` }),
      ]),
    );
    for (let i = 0; i < things.length; i++) {
      const [update, next] = [replies[2 * i], replies[2 * i + 1]];
      expect(update?.outcome).toBe('accepted');
      expect(next?.json.execution).toMatchObject({ jobId: 'order-2', status: 'IN_PROGRESS' });
    }
  });

  it('five start-next of one thing at once claim one execution and all answer with it', async () => {
    await insertThings(t.db, ['same'], now);
    await jobFor('same-a', ['same']);
    await jobFor('same-b', ['same']);
    const replies = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        deviceRequest(device, `${rootOf('same')}/start-next`, { clientToken: `s${i}` }),
      ),
    );
    for (const r of replies) {
      expect(r.json.execution).toMatchObject({ jobId: 'same-a', status: 'IN_PROGRESS', versionNumber: 2 });
    }
    expect(await statusOf('same', 'same-b')).toEqual({ status: 'QUEUED', versionNumber: 1 });
  });

  it('a write the batch statement read as applicable but could not apply gets InternalError; the rest commit once', async () => {
    const things = fleet('skip', 12);
    await insertThings(t.db, things, now);
    await jobFor('skip-a', things);
    await jobFor('skip-b', things);
    const skipped = things[5] as string;
    // A row the guarded UPDATE cannot change, as if another writer had got to it between the read and the UPDATE.
    await t.db.exec(`
      CREATE FUNCTION skip_one_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RETURN CASE WHEN NEW.thing_name = '${skipped}' THEN NULL ELSE NEW END; END $$;
      CREATE TRIGGER skip_one_update BEFORE UPDATE ON job_executions
        FOR EACH ROW EXECUTE FUNCTION skip_one_update();`);
    try {
      const replies = await Promise.all(
        things.map((th) => deviceRequest(device, `${rootOf(th)}/start-next`, { clientToken: th })),
      );
      for (const [i, r] of replies.entries()) {
        const th = things[i] as string;
        if (th === skipped) {
          expect(r.outcome).toBe('rejected');
          expect(r.json.code).toBe('InternalError');
        } else {
          expect(r.outcome).toBe('accepted');
          expect(r.json.execution).toMatchObject({
            jobId: 'skip-a',
            status: 'IN_PROGRESS',
            versionNumber: 2,
          });
        }
      }
    } finally {
      await t.db.exec(`DROP TRIGGER skip_one_update ON job_executions; DROP FUNCTION skip_one_update();`);
    }
    for (const th of things) {
      expect(await statusOf(th, 'skip-a')).toEqual(
        th === skipped ? { status: 'QUEUED', versionNumber: 1 } : { status: 'IN_PROGRESS', versionNumber: 2 },
      );
      expect(await statusOf(th, 'skip-b')).toEqual({ status: 'QUEUED', versionNumber: 1 });
    }
  });

  it('a batch whose statement fails runs its requests alone: only the failing one is rejected', async () => {
    const things = fleet('fail', 12);
    await insertThings(t.db, things, now);
    await jobFor('fail-a', things);
    const poisoned = things[5] as string;
    store.poison(poisoned);
    try {
      const replies = await Promise.all(
        things.map((th) => deviceRequest(device, `${rootOf(th)}/start-next`, { clientToken: th })),
      );
      for (const [i, r] of replies.entries()) {
        const th = things[i] as string;
        if (th === poisoned) {
          expect(r.outcome).toBe('rejected');
          expect(r.json.code).toBe('InternalError');
        } else {
          expect(r.outcome).toBe('accepted');
          expect(r.json.execution).toMatchObject({ jobId: 'fail-a', status: 'IN_PROGRESS' });
        }
      }
    } finally {
      store.poison(undefined);
    }
    expect(await statusOf(poisoned, 'fail-a')).toEqual({ status: 'QUEUED', versionNumber: 1 });
    const retried = await deviceRequest(device, `${rootOf(poisoned)}/start-next`, {});
    expect(retried.json.execution).toMatchObject({ jobId: 'fail-a', status: 'IN_PROGRESS' });
  });
});
