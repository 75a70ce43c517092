import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { minutes, seconds } from '../helpers/workers.js';
import type { FleetJobs } from '../../src/app.js';
import { createPostgresDb, type Db } from '../../src/store/db.js';
import { tryWorkerLock, WORKER_LOCKS } from '../../src/store/sweeps.js';
import { createJob } from '../../src/service/create-job.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';

const T0 = new Date('2026-06-01T00:00:00Z');
const N = 1_000;

// Two fleetjobs instances on one PostgreSQL schema (PGlite is one process: nothing to share).
describe('two instances on one PostgreSQL', () => {
  let t: TestDb;
  let second: Db;
  let a: FleetJobs;
  let b: FleetJobs;
  let now = T0;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    second = createPostgresDb({ url: t.url as string, schema: t.schema as string });
    const names = Array.from({ length: N }, (_, i) => `i-${String(i).padStart(5, '0')}`);
    await insertThings(t.db, names, T0);
    await insertThingGroup(t.db, { thingGroupName: 'all' }, T0);
    await insertGroupMembers(t.db, 'all', names, T0);
    // Small batches so that both instances interleave many transactions.
    const workers = { autoStart: false, timeoutBatchSize: 100 };
    a = await startTestServer({ db: t.db, clock: () => now, workers });
    b = await startTestServer({ db: second, clock: () => now, workers });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await second?.close();
    await t?.close();
  });

  const both = (at: Date) => Promise.all([a.workers.runOnce(at), b.workers.runOnce(at)]);

  it('never double-applies a timeout, a retry, a rollout step or a rollup', async () => {
    await createJob(a.deps, {
      jobId: 'timeouts',
      targets: ['thinggroup/all'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'TIMED_OUT', numberOfRetries: 1 }] },
    });
    await createJob(a.deps, {
      jobId: 'rollout',
      targets: ['thinggroup/all'],
      document: '{}',
      jobExecutionsRolloutConfig: { maximumPerMinute: 150 },
      timeoutConfig: { queuedTimeoutInMinutes: 10 },
    });
    const released = async () =>
      (
        await t.db.query<{ n: number }>(`SELECT count(*) AS n FROM job_executions WHERE job_id = 'rollout'`)
      )[0]?.n;
    expect(await released()).toBe(150);

    now = minutes(T0, 1);
    await both(now);
    expect(await released()).toBe(300);
    now = seconds(T0, 90);
    await both(now);
    expect(await released()).toBe(300);
    now = minutes(T0, 2);
    await both(now);
    expect(await released()).toBe(450);
    for (let m = 3; m <= 12; m++) {
      now = minutes(T0, m);
      await both(now);
    }
    await both(minutes(T0, 30));

    // Every first attempt and every retry timed out exactly once: version 2, one retry each, no third attempt.
    const timeouts = await t.db.query<{
      executionNumber: number;
      status: string;
      version: number;
      n: number;
    }>(
      `SELECT execution_number, status, version_number AS version, count(*) AS n FROM job_executions
       WHERE job_id = 'timeouts' GROUP BY 1, 2, 3 ORDER BY 1`,
    );
    expect(timeouts).toEqual([
      { executionNumber: 1, status: 'TIMED_OUT', version: 2, n: N },
      { executionNumber: 2, status: 'TIMED_OUT', version: 2, n: N },
    ]);
    const rollout = await t.db.query<{ status: string; version: number; n: number }>(
      `SELECT status, version_number AS version, count(*) AS n FROM job_executions
       WHERE job_id = 'rollout' GROUP BY 1, 2`,
    );
    expect(rollout).toEqual([{ status: 'TIMED_OUT', version: 2, n: N }]);
    // The rate held in every minute: at most 150 released per 60 s window.
    const perMinute = await t.db.query<{ minute: Date; n: number }>(
      `SELECT date_trunc('minute', released_at) AS minute, count(*) AS n FROM rollout_targets
       WHERE job_id = 'rollout' GROUP BY 1 ORDER BY 1`,
    );
    expect(perMinute.every((r) => r.n <= 150)).toBe(true);
    expect(perMinute.reduce((s, r) => s + r.n, 0)).toBe(N);

    await Promise.all([a.workers.events.runOnce(now), b.workers.events.runOnce(now)]);
    const events = await t.db.query<{ topic: string; n: number; seqs: number }>(
      `SELECT topic, count(*) AS n, count(DISTINCT seq) AS seqs FROM events GROUP BY topic ORDER BY topic`,
    );
    expect(events).toEqual([
      { topic: '$aws/events/job/rollout/completed', n: 1, seqs: 1 },
      { topic: '$aws/events/job/timeouts/completed', n: 1, seqs: 1 },
      { topic: '$aws/events/jobExecution/rollout/timed_out', n: N, seqs: N },
      { topic: '$aws/events/jobExecution/timeouts/timed_out', n: 2 * N, seqs: 2 * N },
    ]);
    const jobs = await t.db.query<{ jobId: string; status: string; version: number }>(
      `SELECT job_id, status, version FROM jobs ORDER BY job_id`,
    );
    expect(jobs.map((j) => [j.jobId, j.status])).toEqual([
      ['rollout', 'COMPLETED'],
      ['timeouts', 'COMPLETED'],
    ]);
  });

  it('a sweep held by an instance of another schema in the same database does not hold this one', async () => {
    const other = await createTestDb('postgres', { max: 2 });
    const holding = async (db: Db, run: () => Promise<number>): Promise<number> => {
      let release = () => {};
      const held = new Promise<void>((r) => (release = r));
      let locked = () => {};
      const isLocked = new Promise<void>((r) => (locked = r));
      const tx = db.transaction(async (q) => {
        await tryWorkerLock(q, WORKER_LOCKS.timeouts);
        locked();
        await held;
      });
      await isLocked;
      try {
        return await run();
      } finally {
        release();
        await tx;
      }
    };
    try {
      await insertThings(t.db, ['lock-1'], T0);
      await createJob(a.deps, {
        jobId: 'lock-job',
        targets: ['thing/lock-1'],
        document: '{}',
        timeoutConfig: { queuedTimeoutInMinutes: 1 },
      });
      const due = minutes(now, 2);
      // Held by another instance on this schema: the pass skips.
      expect(await holding(second, () => a.workers.timeouts.runOnce(due))).toBe(0);
      // Held on another schema: the pass runs.
      expect(await holding(other.db, () => a.workers.timeouts.runOnce(due))).toBe(1);
    } finally {
      await other.close();
    }
  });
});
