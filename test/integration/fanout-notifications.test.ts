import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, recordMessages, type Received } from '../helpers/mqtt.js';
import { minutes, workerDeps } from '../helpers/workers.js';
import type { FleetJobs } from '../../src/app.js';
import { createPostgresDb, type Db, type Queryable } from '../../src/store/db.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';
import { FANOUT_THRESHOLD } from '../../src/store/funnel.js';
import { createJob } from '../../src/service/create-job.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import { createOutboxDispatcher } from '../../src/workers/outbox-dispatcher.js';
import { createTimeoutWorker } from '../../src/workers/timeouts.js';
import { createEventsWorker } from '../../src/workers/events.js';

// Above the inline threshold, so every change here to the whole group goes through one fanout row.
const N = 1_500;
const T0 = new Date('2026-03-01T00:00:00Z');
const thing = (i: number) => `fan-${String(i).padStart(5, '0')}`;

async function seedGroup(db: Db): Promise<void> {
  const names = Array.from({ length: N }, (_, i) => thing(i));
  await insertThings(db, names, T0);
  await insertThingGroup(db, { thingGroupName: 'fleet' }, T0);
  await insertGroupMembers(db, 'fleet', names, T0);
}

const outboxLeft = async (db: Db): Promise<number> =>
  (await db.query<{ n: number }>(`SELECT count(*) AS n FROM outbox`))[0]?.n ?? 0;

it('a fleet of this size is above the inline threshold', () => {
  expect(N).toBeGreaterThan(FANOUT_THRESHOLD);
});

describe.each(BACKENDS)(
  'notifications of a change to %s things, deferred to the dispatcher, on %s',
  (backend) => {
    let t: TestDb;
    let app: FleetJobs;
    const devices: MqttClient[] = [];
    const rest = async (method: string, path: string, body?: object) => {
      const res = await fetch(`${app.addresses.http}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return res.status;
    };
    const connect = async (name: string) => {
      const device = await connectDevice(app.addresses.mqtt, { clientId: name });
      devices.push(device);
      const root = `$aws/things/${name}/jobs`;
      const notify = recordMessages(device, `${root}/notify`);
      const next = recordMessages(device, `${root}/notify-next`);
      await device.subscribeAsync([`${root}/notify`, `${root}/notify-next`], { qos: 1 });
      return { device, root, notify, next };
    };
    /** Every queued notification is published and, a round trip later, delivered (one session is in order). */
    const delivered = async (device: MqttClient, root: string) => {
      for (let i = 0; (await outboxLeft(t.db)) > 0; i++) {
        if (i > 200) throw new Error('the outbox did not drain');
        await app.dispatcher.runOnce();
      }
      expect((await deviceRequest(device, `${root}/get`, { clientToken: 'sync' })).outcome).toBe('accepted');
    };

    beforeAll(async () => {
      t = await createTestDb(backend);
      await seedGroup(t.db);
      app = await startTestServer({ db: t.db, workers: { autoStart: false } });
    });
    afterAll(async () => {
      await Promise.all(devices.map((d) => d.endAsync()));
      await app?.close();
      await t?.close();
    });

    it('a CreateJob over REST reaches each connected device with one notify and one notify-next, and announces every head', async () => {
      const a = await connect(thing(0));
      const b = await connect(thing(N - 1));
      expect(
        await rest('PUT', '/jobs/fleet-job', { targets: ['thinggroup/fleet'], document: '{"op":"reboot"}' }),
      ).toBe(200);
      for (const d of [a, b]) {
        await delivered(d.device, d.root);
        expect(d.next.map((m: Received) => m.json.execution?.jobId)).toEqual(['fleet-job']);
        expect(d.next[0]?.json.execution).toMatchObject({ status: 'QUEUED', jobDocument: { op: 'reboot' } });
        expect(
          d.notify.map((m: Received) => m.json.jobs.QUEUED?.map((q: { jobId: string }) => q.jobId)),
        ).toEqual([['fleet-job']]);
      }
      const announced = await t.db.query<{ n: number }>(
        `SELECT count(*) AS n FROM things WHERE notified_next_job_id = 'fleet-job'`,
      );
      expect(announced[0]?.n).toBe(N);
    });

    it('a thing changed by its device before the expansion gets notifications of its state as it is, last', async () => {
      const x = await connect(thing(7));
      const y = await connect(thing(8));
      // Nothing is published until the device has finished the job: the fanout row waits behind its changes.
      await app.dispatcher.close();
      expect(
        await rest('PUT', '/jobs/later-job', { targets: ['thinggroup/fleet'], document: '{"op":"update"}' }),
      ).toBe(200);
      await deviceRequest(x.device, `${x.root}/start-next`, {}); // fleet-job, still pending from the test above
      expect(
        (await deviceRequest(x.device, `${x.root}/fleet-job/update`, { status: 'SUCCEEDED' })).outcome,
      ).toBe('accepted');
      await deviceRequest(x.device, `${x.root}/start-next`, {});
      expect(
        (await deviceRequest(x.device, `${x.root}/later-job/update`, { status: 'SUCCEEDED' })).outcome,
      ).toBe('accepted');
      await delivered(x.device, x.root);
      await delivered(y.device, y.root);

      // x: no pending execution left, and nothing after says otherwise.
      expect(x.next.at(-1)?.json.execution).toBeUndefined();
      expect(
        x.next.some((m: Received) => m.json.execution?.jobId === 'later-job' && m !== x.next.at(-1)),
      ).toBe(false);
      expect(x.notify.at(-1)?.json.jobs).toEqual({});
      // y, untouched: told about the new job once, behind the one it still has.
      expect(y.next).toHaveLength(0);
      expect(
        y.notify.map((m: Received) => m.json.jobs.QUEUED?.map((q: { jobId: string }) => q.jobId)),
      ).toEqual([['fleet-job', 'later-job']]);
    });
  },
);

/** A dispatcher over its own publish function, recording what it publishes. */
function recordingDispatcher(db: Db, published: string[], fanoutChunk: number) {
  return createOutboxDispatcher(
    {
      db,
      clock: () => T0,
      log: pino({ level: 'silent' }),
      topics: createTopicScheme(),
      publish: (topic) => {
        published.push(topic);
        return Promise.resolve();
      },
    },
    { fanoutChunk },
  );
}

/** Each thing's notify and notify-next topic exactly once among the published topics. */
function expectEachThingOnce(published: readonly string[]): void {
  const counts = new Map<string, number>();
  for (const topic of published) counts.set(topic, (counts.get(topic) ?? 0) + 1);
  const expected = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    expected.set(`$aws/things/${thing(i)}/jobs/notify`, 1);
    expected.set(`$aws/things/${thing(i)}/jobs/notify-next`, 1);
  }
  expect(counts).toEqual(expected);
}

describe.each(BACKENDS)('expanding a fanout row on %s', (backend) => {
  let t: TestDb;

  beforeAll(async () => {
    t = await createTestDb(backend);
    await seedGroup(t.db);
  });
  afterAll(() => t.close());

  it('a dispatcher that dies between chunks leaves the rest to the next one: every notification once', async () => {
    await createJob(workerDeps(t.db, T0), {
      jobId: 'crash-job',
      targets: ['thinggroup/fleet'],
      document: '{}',
    });
    // The third chunk's transaction fails before it commits, as if the process died there.
    let chunks = 0;
    const failing = (q: Queryable): Queryable => ({
      exec: q.exec,
      query: (text, params) => {
        if (text.includes('FOR UPDATE SKIP LOCKED') && text.includes("kind = 'fanout'") && ++chunks === 3) {
          return Promise.reject(new Error('killed'));
        }
        return q.query(text, params);
      },
    });
    const dying: Db = { ...t.db, transaction: (fn) => t.db.transaction((tx) => fn(failing(tx))) };
    const published: string[] = [];
    await expect(recordingDispatcher(dying, published, 200).runOnce(T0)).rejects.toThrow('killed');
    expect(published.length).toBe(2 * 2 * 200);
    expect(await outboxLeft(t.db)).toBe(1);

    expect(await recordingDispatcher(t.db, published, 200).runOnce(T0)).toBe(2 * (N - 2 * 200));
    expectEachThingOnce(published);
    expect(await outboxLeft(t.db)).toBe(0);
  });

  it('a timeout sweep of every thing defers its events to the fanout row: written, published once each and numbered in commit order after the expansion', async () => {
    const deps = workerDeps(t.db, T0);
    await createJob(deps, {
      jobId: 'sweep-job',
      targets: ['thinggroup/fleet'],
      document: '{}',
      timeoutConfig: { queuedTimeoutInMinutes: 1 },
    });
    await recordingDispatcher(t.db, [], 500).runOnce(T0);
    const later = minutes(T0, 2);
    expect(await createTimeoutWorker(deps).runOnce(later)).toBe(N);
    const sequencer = createEventsWorker(deps);
    await sequencer.runOnce(later);
    const numbered = async () =>
      t.db.query<{ topic: string; payload: Record<string, unknown> }>(
        `SELECT topic, payload FROM events WHERE job_id = 'sweep-job' AND seq IS NOT NULL ORDER BY seq`,
      );
    // The job's completed event committed with the sweep, after the ids its deferred events hold: it waits for them.
    expect(await numbered()).toEqual([]);

    const published: string[] = [];
    await recordingDispatcher(t.db, published, 500).runOnce(later);
    await sequencer.runOnce(later);
    const events = await numbered();
    expect(events.map((e) => e.topic)).toEqual([
      ...Array<string>(N).fill('$aws/events/jobExecution/sweep-job/timed_out'),
      '$aws/events/job/sweep-job/completed',
    ]);
    expect(events[0]?.payload).toMatchObject({
      eventType: 'JOB_EXECUTION',
      operation: 'timed_out',
      jobId: 'sweep-job',
      thingArn: `arn:aws:iot:local:000000000000:thing/${thing(0)}`,
      status: 'TIMED_OUT',
      statusDetails: {},
      timestamp: later.getTime() / 1000,
    });
    expect(new Set(events.map((e) => e.payload.eventId)).size).toBe(N + 1);
    const count = (topic: string) => published.filter((p) => p === topic).length;
    expect(count('$aws/events/jobExecution/sweep-job/timed_out')).toBe(N);
    expect(count('$aws/events/job/sweep-job/completed')).toBe(1);
    expect(published.filter((p) => p.endsWith('/jobs/notify'))).toHaveLength(N);
    expect(await outboxLeft(t.db)).toBe(0);
  });
});

// Two dispatchers on one PostgreSQL schema (PGlite is one process: nothing to share).
describe('two dispatchers on one PostgreSQL schema', () => {
  let t: TestDb;
  let second: Db;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    second = createPostgresDb({ url: t.url as string, schema: t.schema as string });
    await seedGroup(t.db);
  });
  afterAll(async () => {
    await second?.close();
    await t?.close();
  });

  it('expand and publish every notification exactly once between them', async () => {
    await createJob(workerDeps(t.db, T0), {
      jobId: 'shared-job',
      targets: ['thinggroup/fleet'],
      document: '{}',
    });
    const published: string[] = [];
    const counts = await Promise.all([
      recordingDispatcher(t.db, published, 100).runOnce(T0),
      recordingDispatcher(second, published, 100).runOnce(T0),
    ]);
    // A dispatcher that found the fanout row taken publishes what the other expands once it looks again.
    for (let i = 0; (await outboxLeft(t.db)) > 0; i++) {
      if (i > 100) throw new Error('the outbox did not drain');
      counts.push(await recordingDispatcher(second, published, 100).runOnce(T0));
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(2 * N);
    expectEachThingOnce(published);
  });
});
