import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { deviceRequest, recordMessages, waitForMessage, type Received } from '../helpers/mqtt.js';
import { startTestServer } from '../helpers/server.js';

const rootOf = (name: string) => `$aws/things/${name}/jobs`;

interface Device {
  client: MqttClient;
  seen: Received[];
  sessionPresent: boolean;
}

/** Connects with the listener attached before CONNACK, so that what is written at CONNACK is seen too. */
function connect(url: string, options: IClientOptions): Promise<Device> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  const seen = recordMessages(client, '#');
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, seen, sessionPresent: connack.sessionPresent }));
    client.once('error', reject);
  });
}

async function seenOn(d: Device, topic: string): Promise<Received> {
  return d.seen.find((m) => m.topic === topic) ?? (await waitForMessage(d.client, topic));
}

/** A round trip: whatever the server wrote to the device before answering has arrived. */
async function settle(d: Device, thingName: string): Promise<void> {
  expect((await deviceRequest(d.client, `${rootOf(thingName)}/get`, { clientToken: 'settle' })).outcome).toBe(
    'accepted',
  );
}

describe.each(BACKENDS)(
  'a device whose session the server lost catches up from the store, on %s',
  (backend) => {
    let t: TestDb;
    let app: FleetJobs;
    const clients: MqttClient[] = [];
    const device = async (name: string, options: IClientOptions = {}) => {
      const d = await connect(app.addresses.mqtt, { clientId: name, ...options });
      clients.push(d.client);
      return d;
    };
    /** A server stopped and started again on the same store: the embedded broker's sessions are gone. */
    const restart = async () => {
      await app.close();
      app = await startTestServer({ db: t.db });
    };
    const offlineWithJob = async (name: string, jobId: string) => {
      const d = await device(name, { clean: false });
      await d.client.subscribeAsync([`${rootOf(name)}/notify-next`, `${rootOf(name)}/notify`], { qos: 1 });
      await d.client.endAsync();
      await createJob(app.deps, { jobId, targets: [`thing/${name}`], document: `{"op":"${jobId}"}` });
      await app.dispatcher.runOnce();
    };

    beforeAll(async () => {
      t = await createTestDb(backend);
      await insertThings(t.db, ['quiet', 'resub', 'clean', 'empty', 'kept'], new Date());
      app = await startTestServer({ db: t.db });
    });
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await app?.close();
      await t?.close();
    });

    it('writes the notify-next it missed at CONNACK to a clean=false device that does not subscribe again', async () => {
      await offlineWithJob('quiet', 'job-quiet');
      await restart();
      const d = await device('quiet', { clean: false });
      expect(d.sessionPresent).toBe(false);
      const next = await seenOn(d, `${rootOf('quiet')}/notify-next`);
      expect(next.json.execution).toMatchObject({
        jobId: 'job-quiet',
        status: 'QUEUED',
        jobDocument: { op: 'job-quiet' },
      });
    });

    it('answers its subscription to notify and notify-next with the current pending list and head', async () => {
      await offlineWithJob('resub', 'job-resub');
      await restart();
      const d = await device('resub', { clean: false });
      await d.client.subscribeAsync([`${rootOf('resub')}/notify-next`, `${rootOf('resub')}/notify`], {
        qos: 1,
      });
      const next = await seenOn(d, `${rootOf('resub')}/notify-next`);
      const notify = await seenOn(d, `${rootOf('resub')}/notify`);
      expect(next.json.execution.jobId).toBe('job-resub');
      expect(notify.json.jobs.QUEUED.map((s: { jobId: string }) => s.jobId)).toEqual(['job-resub']);
      await settle(d, 'resub');
      // Once at CONNACK, once for the subscription: the same execution.
      const nexts = d.seen.filter((m) => m.topic.endsWith('/notify-next'));
      expect(nexts.map((m) => m.json.execution.jobId)).toEqual(['job-resub', 'job-resub']);
    });

    it('gives a clean session nothing from before it subscribed', async () => {
      await createJob(app.deps, { jobId: 'job-clean', targets: ['thing/clean'], document: '{}' });
      // Published before the device connects: a notification dispatched after its SUBSCRIBE would be a new one.
      await app.dispatcher.runOnce();
      const d = await device('clean', { clean: true });
      await d.client.subscribeAsync(`${rootOf('clean')}/#`, { qos: 1 });
      await settle(d, 'clean');
      expect(d.seen.filter((m) => /\/notify(-next)?$/.test(m.topic))).toEqual([]);
    });

    it('sends nothing to a device with nothing pending', async () => {
      const d = await device('empty', { clean: false });
      await d.client.subscribeAsync(`${rootOf('empty')}/#`, { qos: 1 });
      await settle(d, 'empty');
      expect(d.seen.filter((m) => /\/notify(-next)?$/.test(m.topic))).toEqual([]);
    });

    it('adds nothing to a session the broker kept: its queued notify-next arrives once', async () => {
      await offlineWithJob('kept', 'job-kept');
      const d = await device('kept', { clean: false });
      expect(d.sessionPresent).toBe(true);
      await seenOn(d, `${rootOf('kept')}/notify-next`);
      await settle(d, 'kept');
      expect(d.seen.filter((m) => m.topic.endsWith('/notify-next'))).toHaveLength(1);
    });
  },
);
