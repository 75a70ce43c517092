import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BACKENDS, countingDb, createTestDb, type TestDb } from '../helpers/db.js';
import { createJob } from '../../src/service/create-job.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { FleetJobsError } from '../../src/protocol/errors.js';

describe.each(BACKENDS)('CreateJob fan-out on %s', (backend) => {
  let t: TestDb;
  let deps: ServiceDeps;
  const now = new Date('2026-01-01T00:00:00Z');

  beforeAll(async () => {
    t = await createTestDb(backend);
    deps = {
      db: t.db,
      clock: () => now,
      log: pino({ level: 'silent' }),
      arn: { region: 'local', accountId: '000000000000' },
      topics: createTopicScheme(),
      outboxWritten: () => {},
    };
    const names = Array.from({ length: 10_000 }, (_, i) => `dev-${String(i).padStart(5, '0')}`);
    await insertThings(t.db, names, now);
    await insertThingGroup(t.db, { thingGroupName: 'fleet' }, now);
    await insertGroupMembers(t.db, 'fleet', names, now);
  });
  afterAll(() => t.close());

  it('creates one QUEUED execution per thing of a 10,000-thing group with a constant number of statements', async () => {
    const counted = countingDb(t.db);
    await createJob(
      { ...deps, db: counted.db },
      {
        jobId: 'fanout',
        targets: ['arn:aws:iot:local:000000000000:thinggroup/fleet', 'thing/dev-00001'],
        document: '{"operation":"reboot"}',
      },
    );
    const rows = await t.db.query<{ n: number; s: string }>(
      `SELECT count(*) AS n, min(status) AS s FROM job_executions WHERE job_id = 'fanout'`,
    );
    expect(rows[0]).toEqual({ n: 10_000, s: 'QUEUED' });
    expect(counted.count()).toBeLessThan(15);
    const outbox = await t.db.query<{ kind: string; n: number }>(
      `SELECT kind, count(*) AS n FROM outbox GROUP BY kind ORDER BY kind`,
    );
    expect(outbox).toEqual([
      { kind: 'notify', n: 10_000 },
      { kind: 'notify-next', n: 10_000 },
    ]);
  });

  it('writes the notify payload of the pending set as of the change', async () => {
    const rows = await t.db.query<{ payload: unknown }>(
      `SELECT payload FROM outbox WHERE kind = 'notify' AND thing_name = 'dev-00002'`,
    );
    expect(rows[0]?.payload).toEqual({
      timestamp: 1767225600,
      jobs: {
        QUEUED: [
          {
            jobId: 'fanout',
            queuedAt: 1767225600,
            lastUpdatedAt: 1767225600,
            versionNumber: 1,
            executionNumber: 1,
          },
        ],
      },
    });
  });

  it('names unknown targets and changes nothing', async () => {
    const err = await createJob(deps, {
      jobId: 'bad',
      targets: ['thing/nope', 'thinggroup/none'],
      document: '{}',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetJobsError);
    expect((err as FleetJobsError).message).toContain('thing/nope');
    expect((err as FleetJobsError).message).toContain('thinggroup/none');
    const jobs = await t.db.query(`SELECT 1 FROM jobs WHERE job_id = 'bad'`);
    expect(jobs).toHaveLength(0);
  });
});
