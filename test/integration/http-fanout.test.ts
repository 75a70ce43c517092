import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';

/** Fan-out of a 10,000-thing group through the REST API, on the real PostgreSQL. */
describe('CreateJob over REST for a 10,000-thing group on postgres', () => {
  let cp: ControlPlane;
  const N = 10_000;

  beforeAll(async () => {
    cp = await createControlPlane('postgres');
    const now = new Date('2026-01-01T00:00:00Z');
    const names = Array.from({ length: N }, (_, i) => `fan-${String(i).padStart(5, '0')}`);
    await insertThings(cp.t.db, names, now);
    await insertThingGroup(cp.t.db, { thingGroupName: 'big' }, now);
    await insertGroupMembers(cp.t.db, 'big', names, now);
  });
  afterAll(() => cp.close());

  it('queues one execution per thing, counts them exactly, lists them in pages, and cancels them all', async () => {
    const created = await cp.call('PUT', '/jobs/big-job', {
      targets: ['thinggroup/big', 'thing/fan-00001'],
      document: '{"operation":"reboot"}',
    });
    expect(created.status).toBe(200);
    const d = await cp.call('GET', '/jobs/big-job');
    expect((d.body.job as { jobProcessDetails: Record<string, number> }).jobProcessDetails).toMatchObject({
      numberOfQueuedThings: N,
      numberOfCanceledThings: 0,
    });
    let token: string | undefined;
    let seen = 0;
    do {
      const page = await cp.call(
        'GET',
        `/jobs/big-job/things?maxResults=250${token ? `&nextToken=${token}` : ''}`,
      );
      seen += (page.body.executionSummaries as unknown[]).length;
      token = page.body.nextToken as string | undefined;
    } while (token);
    expect(seen).toBe(N);
    const canceled = await cp.call('PUT', '/jobs/big-job/cancel');
    expect(canceled.status).toBe(200);
    const after = await cp.call('GET', '/jobs/big-job');
    expect((after.body.job as { jobProcessDetails: Record<string, number> }).jobProcessDetails).toMatchObject(
      {
        numberOfQueuedThings: 0,
        numberOfCanceledThings: N,
      },
    );
    expect((await cp.call('DELETE', '/jobs/big-job')).status).toBe(200);
    const left = await cp.t.db.query<{ n: number }>(`SELECT count(*) AS n FROM job_executions`);
    expect(left[0]?.n).toBe(0);
  }, 180_000);
});
