import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, recordMessages, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';

// Delivery, isolation and recovery are properties of the broker and the dispatcher, not of the store: these run
// on PostgreSQL only (the core flow runs on both stores elsewhere).
describe('device MQTT isolation and delivery', () => {
  let t: TestDb;
  let app: FleetJobs;
  const clients: MqttClient[] = [];
  const connect = async (options: mqtt.IClientOptions = {}) => {
    const c = await connectDevice(app.addresses.mqtt, options);
    clients.push(c);
    return c;
  };
  const fleet = Array.from({ length: 300 }, (_, i) => `fleet-${i}`);

  beforeAll(async () => {
    t = await createTestDb('postgres');
    await insertThings(t.db, ['x', 'p', 'c', 'r', ...fleet], new Date());
    await insertThingGroup(t.db, { thingGroupName: 'fleet' }, new Date());
    await insertGroupMembers(t.db, 'fleet', fleet, new Date());
    app = await startTestServer({ db: t.db });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await app?.close();
    await t?.close();
  });

  it('delivers a reply to its requester only, never to another subscriber of the reply topic', async () => {
    const requester = await connect();
    const spy = await connect();
    await spy.subscribeAsync(['$aws/things/x/jobs/#', '$aws/things/x/jobs/get/accepted'], { qos: 1 });
    const spied = recordMessages(spy, '#');
    const reply = await deviceRequest(requester, '$aws/things/x/jobs/get', { clientToken: 'mine' });
    expect(reply.json).toMatchObject({ clientToken: 'mine', inProgressJobs: [], queuedJobs: [] });
    // The spy's next message is the notification a later change causes; the reply never reached it.
    const notified = waitForMessage(spy, '$aws/things/x/jobs/notify');
    await createJob(app.deps, { jobId: 'iso-1', targets: ['thing/x'], document: '{}' });
    await notified;
    expect(spied.map((m) => m.topic)).not.toContain('$aws/things/x/jobs/get/accepted');
    expect(spied.every((m) => !m.topic.endsWith('/accepted') && !m.topic.endsWith('/rejected'))).toBe(true);
  });

  it('disconnects a device that publishes to a reply or notification topic and delivers nothing', async () => {
    const listener = await connect();
    await listener.subscribeAsync('$aws/things/x/jobs/#', { qos: 1 });
    const heard = recordMessages(listener, '#');
    for (const topic of ['$aws/things/x/jobs/notify-next', '$aws/things/x/jobs/get/accepted']) {
      const forger = await connect();
      const closed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
      forger.publish(topic, JSON.stringify({ timestamp: 1, forged: true }), { qos: 0 });
      await closed;
      expect(forger.connected).toBe(false);
    }
    const notified = waitForMessage(listener, '$aws/things/x/jobs/notify');
    await createJob(app.deps, { jobId: 'iso-2', targets: ['thing/x'], document: '{}' });
    await notified;
    expect(heard.some((m) => m.json?.forged === true)).toBe(false);
  });

  it('delivers notifications published while a persistent-session device was offline when it reconnects', async () => {
    const options = { clientId: 'persistent-p', clean: false } as const;
    const first = await connectDevice(app.addresses.mqtt, options);
    await first.subscribeAsync('$aws/things/p/jobs/notify-next', { qos: 1 });
    await first.endAsync();

    await createJob(app.deps, { jobId: 'while-offline', targets: ['thing/p'], document: '{"op":"later"}' });
    await app.dispatcher.runOnce();
    const left = await t.db.query(`SELECT 1 FROM outbox WHERE thing_name = 'p'`);
    expect(left).toHaveLength(0);

    const again = mqtt.connect(app.addresses.mqtt, { ...options, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(again);
    const m = await waitForMessage(again, '$aws/things/p/jobs/notify-next');
    expect(m.json.execution).toMatchObject({
      jobId: 'while-offline',
      status: 'QUEUED',
      jobDocument: { op: 'later' },
    });
  });

  it('never starts two different heads for concurrent start-next from two connections of one thing', async () => {
    for (const jobId of ['c-1', 'c-2', 'c-3']) {
      await createJob(app.deps, { jobId, targets: ['thing/c'], document: '{}' });
    }
    const a = await connect();
    const b = await connect();
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        deviceRequest(i % 2 === 0 ? a : b, '$aws/things/c/jobs/start-next', { clientToken: `s${i}` }),
      ),
    );
    const started = new Set(
      replies.map((r) => `${r.json.execution?.jobId}:${r.json.execution?.versionNumber}`),
    );
    expect(started).toEqual(new Set(['c-1:2']));
    const rows = await t.db.query<{ jobId: string }>(
      `SELECT job_id FROM job_executions WHERE thing_name = 'c' AND status = 'IN_PROGRESS'`,
    );
    expect(rows).toEqual([{ jobId: 'c-1' }]);
  });

  it('keeps serving when subscribers die abruptly in the middle of a notification burst', async () => {
    const victims = await Promise.all(Array.from({ length: 20 }, () => connect()));
    await Promise.all(victims.map((v) => v.subscribeAsync('$aws/things/+/jobs/#', { qos: 0 })));
    const firstArrived = waitForMessage(victims[0] as MqttClient, '$aws/things/+/jobs/notify');
    await createJob(app.deps, { jobId: 'burst', targets: ['thinggroup/fleet'], document: '{"big":true}' });
    await firstArrived;
    for (const v of victims) v.stream.destroy();
    await app.dispatcher.runOnce();

    const survivor = await connect();
    const reply = await deviceRequest(survivor, '$aws/things/r/jobs/get', { clientToken: 'alive' });
    expect(reply.json).toMatchObject({ clientToken: 'alive', queuedJobs: [] });
    const pending = await t.db.query(`SELECT 1 FROM outbox`);
    expect(pending).toHaveLength(0);
  });

  it('publishes outbox rows left behind by an instance that stopped before publishing them', async () => {
    // The surviving instance's dispatcher is down too, as after a whole-cluster crash, until its restart below.
    await app.dispatcher.close();
    const crashed = await startTestServer({ db: t.db });
    await crashed.dispatcher.close();
    const device = await connect();
    await device.subscribeAsync('$aws/things/r/jobs/notify-next', { qos: 1 });
    await createJob(crashed.deps, { jobId: 'orphan', targets: ['thing/r'], document: '{"op":"orphan"}' });
    await crashed.close();
    const rows = await t.db.query(`SELECT kind FROM outbox WHERE thing_name = 'r' ORDER BY id`);
    expect(rows).toEqual([{ kind: 'notify' }, { kind: 'notify-next' }]);

    const delivered = waitForMessage(device, '$aws/things/r/jobs/notify-next');
    app.dispatcher.start();
    expect((await delivered).json.execution).toMatchObject({
      jobId: 'orphan',
      jobDocument: { op: 'orphan' },
    });
    // Deleted in the publishing transaction, which commits once the broker has taken the messages.
    await app.dispatcher.runOnce();
    expect(await t.db.query(`SELECT 1 FROM outbox WHERE thing_name = 'r'`)).toHaveLength(0);
  });

  it('does not announce a head that ended before its notify-next was published', async () => {
    const device = await connect();
    await device.subscribeAsync('$aws/things/p/jobs/notify-next', { qos: 1 });
    const root = '$aws/things/p/jobs';
    // Drain what earlier tests left for p, then hold the dispatcher while the head changes twice.
    await deviceRequest(device, `${root}/while-offline/update`, { status: 'SUCCEEDED' });
    await app.dispatcher.runOnce();
    await app.dispatcher.close();
    await createJob(app.deps, { jobId: 'stale-1', targets: ['thing/p'], document: '{}' });
    await createJob(app.deps, { jobId: 'stale-2', targets: ['thing/p'], document: '{}' });
    await deviceRequest(device, `${root}/stale-1/update`, { status: 'SUCCEEDED' });
    const heads = await t.db.query(
      `SELECT job_id FROM outbox WHERE thing_name = 'p' AND kind = 'notify-next' ORDER BY id`,
    );
    expect(heads).toEqual([{ jobId: 'stale-1' }, { jobId: 'stale-2' }]);

    const seen = recordMessages(device, `${root}/notify-next`);
    const announced = waitForMessage(device, `${root}/notify-next`);
    app.dispatcher.start();
    expect((await announced).json.execution).toMatchObject({ jobId: 'stale-2', status: 'QUEUED' });
    await app.dispatcher.runOnce();
    expect(seen.map((m) => m.json.execution?.jobId)).toEqual(['stale-2']);
  });
});
