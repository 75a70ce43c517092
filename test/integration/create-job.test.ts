import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BACKENDS, countingDb, createTestDb, type TestDb } from '../helpers/db.js';
import { createJob } from '../../src/service/create-job.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { FleetJobsError } from '../../src/protocol/errors.js';
import { expandFanoutChunk } from '../../src/store/notifications.js';

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
    // One deferred notification naming every thing, not 20,000 outbox rows in the CreateJob transaction.
    const outbox = await t.db.query<{ kind: string; notify: number; notifyNext: number }>(
      `SELECT kind, cardinality(notify_things) AS notify, cardinality(notify_next_things) AS notify_next
       FROM outbox`,
    );
    expect(outbox).toEqual([{ kind: 'fanout', notify: 10_000, notifyNext: 10_000 }]);
  });

  it('expands the fanout row into one notify and one notify-next row per thing, chunk by chunk', async () => {
    let chunks = 0;
    while (await t.db.transaction((tx) => expandFanoutChunk(tx, 3_000, now))) chunks++;
    expect(chunks).toBe(4);
    const outbox = await t.db.query<{ kind: string; n: number; things: number }>(
      `SELECT kind, count(*) AS n, count(DISTINCT thing_name) AS things FROM outbox GROUP BY kind ORDER BY kind`,
    );
    expect(outbox).toEqual([
      { kind: 'notify', n: 10_000, things: 10_000 },
      { kind: 'notify-next', n: 10_000, things: 10_000 },
    ]);
  });

  it('writes the notify payload of the pending set as of the expansion', async () => {
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
