import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';

const ARN = 'arn:aws:iot:local:000000000000';

describe.each(BACKENDS)('things and thing groups over REST on %s', (backend) => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await createControlPlane(backend);
  });
  afterAll(() => cp.close());

  const executions = (jobId: string) =>
    cp.t.db.query<{ thingName: string; executionNumber: number; status: string; versionNumber: number }>(
      `SELECT thing_name, execution_number, status, version_number FROM job_executions WHERE job_id = $1
       ORDER BY thing_name, execution_number`,
      [jobId],
    );

  it('CreateThing returns name, ARN and id; DescribeThing returns attributes and type', async () => {
    const created = await cp.call('POST', '/things/sensor-1', {
      thingTypeName: 'sensor',
      attributePayload: { attributes: { site: 'lyon', floor: '2' } },
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({
      thingName: 'sensor-1',
      thingArn: `${ARN}:thing/sensor-1`,
      thingId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const described = await cp.call('GET', '/things/sensor-1');
    expect(described.body).toMatchObject({
      thingName: 'sensor-1',
      thingArn: `${ARN}:thing/sensor-1`,
      thingId: created.body.thingId,
      thingTypeName: 'sensor',
      attributes: { site: 'lyon', floor: '2' },
      version: 1,
    });
  });

  it('CreateThing without a body (curl -X POST) creates a bare thing', async () => {
    const res = await cp.app.inject({ method: 'POST', url: '/things/bare-1' });
    expect(res.statusCode).toBe(200);
    const empty = await cp.app.inject({
      method: 'POST',
      url: '/things/bare-2',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.statusCode).toBe(200);
  });

  it('CreateThing again with the same configuration succeeds; with another it is ResourceAlreadyExists', async () => {
    const again = await cp.call('POST', '/things/sensor-1', {
      thingTypeName: 'sensor',
      attributePayload: { attributes: { floor: '2', site: 'lyon' } },
    });
    expect(again.status).toBe(200);
    const other = await cp.call('POST', '/things/sensor-1', {
      attributePayload: { attributes: { site: 'x' } },
    });
    expect(other.status).toBe(409);
    expect(other.error).toBe('ResourceAlreadyExistsException');
  });

  it('DescribeThing of an unknown thing is ResourceNotFoundException', async () => {
    const res = await cp.call('GET', '/things/nope');
    expect(res.status).toBe(404);
    expect(res.error).toBe('ResourceNotFoundException');
    expect(res.body.message).toContain('nope');
  });

  it('ListThings pages with maxResults/nextToken and filters by attribute', async () => {
    for (const n of ['list-a', 'list-b', 'list-c']) {
      await cp.call('POST', `/things/${n}`, { attributePayload: { attributes: { role: 'lister' } } });
    }
    const filtered = await cp.call('GET', '/things?attributeName=role&attributeValue=lister&maxResults=2');
    expect((filtered.body.things as { thingName: string }[]).map((t) => t.thingName)).toEqual([
      'list-a',
      'list-b',
    ]);
    expect(filtered.body.nextToken).toEqual(expect.any(String));
    const rest = await cp.call(
      'GET',
      `/things?attributeName=role&attributeValue=lister&maxResults=2&nextToken=${filtered.body.nextToken as string}`,
    );
    expect((rest.body.things as { thingName: string }[]).map((t) => t.thingName)).toEqual(['list-c']);
    expect(rest.body.nextToken).toBeUndefined();
    const all = await cp.call('GET', '/things');
    expect((all.body.things as unknown[]).length).toBeGreaterThanOrEqual(6);
    expect((all.body.things as Record<string, unknown>[])[0]).toHaveProperty('thingArn');
  });

  it('thing groups: create, describe, list, add and list members, remove', async () => {
    const created = await cp.call('POST', '/thing-groups/plant', {
      thingGroupProperties: {
        thingGroupDescription: 'the plant',
        attributePayload: { attributes: { a: 'b' } },
      },
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({
      thingGroupName: 'plant',
      thingGroupArn: `${ARN}:thinggroup/plant`,
      thingGroupId: expect.any(String),
    });
    const described = await cp.call('GET', '/thing-groups/plant');
    expect(described.body).toMatchObject({
      thingGroupName: 'plant',
      thingGroupArn: `${ARN}:thinggroup/plant`,
      thingGroupProperties: {
        thingGroupDescription: 'the plant',
        attributePayload: { attributes: { a: 'b' } },
      },
      thingGroupMetadata: { creationDate: 1767225600 },
    });
    await cp.call('POST', '/thing-groups/other');
    const groups = await cp.call('GET', '/thing-groups');
    expect(groups.body.thingGroups).toEqual([
      { groupName: 'other', groupArn: `${ARN}:thinggroup/other` },
      { groupName: 'plant', groupArn: `${ARN}:thinggroup/plant` },
    ]);
    expect(
      (
        await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
          thingGroupName: 'plant',
          thingName: 'list-a',
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
          thingGroupArn: `${ARN}:thinggroup/plant`,
          thingArn: `${ARN}:thing/list-b`,
        })
      ).status,
    ).toBe(200);
    const members = await cp.call('GET', '/thing-groups/plant/things?maxResults=1');
    expect(members.body.things).toEqual(['list-a']);
    const next = await cp.call(
      'GET',
      `/thing-groups/plant/things?nextToken=${members.body.nextToken as string}`,
    );
    expect(next.body).toEqual({ things: ['list-b'] });
    await cp.call('PUT', '/thing-groups/removeThingFromThingGroup', {
      thingGroupName: 'plant',
      thingName: 'list-a',
    });
    expect((await cp.call('GET', '/thing-groups/plant/things')).body).toEqual({ things: ['list-b'] });
  });

  it('AddThingToThingGroup of an unknown thing or group is ResourceNotFound naming it', async () => {
    const noThing = await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'plant',
      thingName: 'ghost',
    });
    expect(noThing.status).toBe(404);
    expect(noThing.body.message).toContain('ghost');
    const noGroup = await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'nowhere',
      thingName: 'list-a',
    });
    expect(noGroup.status).toBe(404);
    expect(noGroup.body.message).toContain('nowhere');
    const neither = await cp.call('PUT', '/thing-groups/addThingToThingGroup', { thingName: 'list-a' });
    expect(neither.status).toBe(400);
  });

  it('a thing added to a group of an IN_PROGRESS CONTINUOUS job gets a QUEUED execution at once; leaving makes it REMOVED; re-joining gives the next executionNumber', async () => {
    await cp.call('POST', '/thing-groups/cont');
    await cp.call('POST', '/things/joiner');
    await cp.call('POST', '/things/direct');
    const job = await cp.call('PUT', '/jobs/cont-job', {
      targets: ['thinggroup/cont', 'thing/direct'],
      document: '{"op":"x"}',
      targetSelection: 'CONTINUOUS',
    });
    expect(job.status).toBe(200);
    expect(await executions('cont-job')).toEqual([
      { thingName: 'direct', executionNumber: 1, status: 'QUEUED', versionNumber: 1 },
    ]);
    await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'cont',
      thingName: 'joiner',
    });
    expect(await executions('cont-job')).toContainEqual({
      thingName: 'joiner',
      executionNumber: 1,
      status: 'QUEUED',
      versionNumber: 1,
    });
    const notify = await cp.t.db.query<{ kind: string }>(
      `SELECT kind FROM outbox WHERE thing_name = 'joiner' ORDER BY id`,
    );
    expect(notify.map((r) => r.kind)).toEqual(['notify', 'notify-next']);

    // A thing the job names directly keeps its execution when it leaves the group.
    await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'cont',
      thingName: 'direct',
    });
    await cp.call('PUT', '/thing-groups/removeThingFromThingGroup', {
      thingGroupName: 'cont',
      thingName: 'direct',
    });
    await cp.call('PUT', '/thing-groups/removeThingFromThingGroup', {
      thingGroupName: 'cont',
      thingName: 'joiner',
    });
    expect(await executions('cont-job')).toEqual([
      { thingName: 'direct', executionNumber: 1, status: 'QUEUED', versionNumber: 1 },
      { thingName: 'joiner', executionNumber: 1, status: 'REMOVED', versionNumber: 2 },
    ]);
    await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'cont',
      thingName: 'joiner',
    });
    expect((await executions('cont-job')).filter((e) => e.thingName === 'joiner')).toEqual([
      { thingName: 'joiner', executionNumber: 1, status: 'REMOVED', versionNumber: 2 },
      { thingName: 'joiner', executionNumber: 2, status: 'QUEUED', versionNumber: 1 },
    ]);
    const described = await cp.call('GET', '/jobs/cont-job');
    expect(described.body.job).toMatchObject({
      status: 'IN_PROGRESS',
      jobProcessDetails: { numberOfQueuedThings: 2, numberOfRemovedThings: 0 },
    });
  });

  it('a SNAPSHOT job does not follow group membership', async () => {
    await cp.call('POST', '/thing-groups/snap');
    await cp.call('POST', '/things/snap-1');
    await cp.call('PUT', '/jobs/snap-job', { targets: ['thinggroup/snap'], document: '{}' });
    await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'snap',
      thingName: 'snap-1',
    });
    expect(await executions('snap-job')).toEqual([]);
  });

  it('DeleteThingGroup makes the pending executions its members had through it REMOVED', async () => {
    await cp.call('POST', '/thing-groups/doomed');
    await cp.call('POST', '/things/doomed-1');
    await cp.call('PUT', '/thing-groups/addThingToThingGroup', {
      thingGroupName: 'doomed',
      thingName: 'doomed-1',
    });
    await cp.call('PUT', '/jobs/doomed-job', {
      targets: ['thinggroup/doomed'],
      document: '{}',
      targetSelection: 'CONTINUOUS',
    });
    expect((await cp.call('DELETE', '/thing-groups/doomed')).status).toBe(200);
    expect(await executions('doomed-job')).toEqual([
      { thingName: 'doomed-1', executionNumber: 1, status: 'REMOVED', versionNumber: 2 },
    ]);
    expect((await cp.call('GET', '/thing-groups/doomed')).status).toBe(404);
    expect((await cp.call('DELETE', '/thing-groups/doomed')).status).toBe(200);
  });

  it('DeleteThing sets its pending executions REMOVED, notifies, completes a SNAPSHOT job, and is idempotent', async () => {
    await cp.call('POST', '/things/gone-1');
    await cp.call('PUT', '/jobs/gone-job', { targets: ['thing/gone-1'], document: '{}' });
    const before = await cp.t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM outbox WHERE thing_name = 'gone-1'`,
    );
    const res = await cp.call('DELETE', '/things/gone-1');
    expect(res.status).toBe(200);
    expect(await executions('gone-job')).toEqual([
      { thingName: 'gone-1', executionNumber: 1, status: 'REMOVED', versionNumber: 2 },
    ]);
    const after = await cp.t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM outbox WHERE thing_name = 'gone-1'`,
    );
    expect((after[0]?.n ?? 0) - (before[0]?.n ?? 0)).toBe(2);
    expect((await cp.call('GET', '/things/gone-1')).status).toBe(404);
    expect(((await cp.call('GET', '/jobs/gone-job')).body.job as Record<string, unknown>).status).toBe(
      'COMPLETED',
    );
    expect((await cp.call('DELETE', '/things/gone-1')).status).toBe(200);
  });

  it('DeleteThing with a stale expectedVersion is VersionConflictException and deletes nothing', async () => {
    await cp.call('POST', '/things/versioned');
    const res = await cp.call('DELETE', '/things/versioned?expectedVersion=7');
    expect(res.status).toBe(409);
    expect(res.error).toBe('VersionConflictException');
    expect((await cp.call('GET', '/things/versioned')).status).toBe(200);
  });
});
