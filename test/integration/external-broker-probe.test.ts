import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { BACKENDS, createTestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

/** The Mosquitto 2 the suite runs beside: it never delivers `$aws/...` to a `$share/...` subscription. */
const MOSQUITTO_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

/**
 * [issue 18] External-broker mode with the default `$aws` root and the default shared subscription, against the
 * real Mosquitto: start() probes delivery instead of starting healthy and deaf. What it does depends on the store
 * (PostgreSQL may have other instances, PGlite cannot), so each case runs on the backend it is about.
 */
describe('external-broker mode probes its shared subscription on Mosquitto', () => {
  // A $ root of this run's own: Mosquitto skips it in $share as it skips $aws, and no parallel run sees it.
  const prefix = `$fjtest-${randomBytes(4).toString('hex')}`;
  const jobsTopicRoot = `${prefix}/things/{thingName}/jobs`;
  const opened: { close(): Promise<void> }[] = [];
  let device: MqttClient | undefined;
  afterAll(async () => {
    await device?.endAsync();
    for (const o of opened.reverse()) await o.close();
  });

  it.skipIf(!BACKENDS.includes('postgres'))(
    'stops with one line naming MQTT_URL and ?share=none when instances may share the store (PostgreSQL)',
    async () => {
      const t = await createTestDb('postgres');
      opened.push(t);
      const failure = await startTestServer({
        db: t.db,
        config: { mqttUrl: MOSQUITTO_URL, jobsTopicRoot },
      }).then(
        (app) => {
          opened.push(app);
          throw new Error('the server started although Mosquitto delivers nothing to $share');
        },
        (err: Error) => err.message,
      );
      expect(failure).toContain(
        `the broker of MQTT_URL delivers nothing to the shared subscription $share/fleetjobs/${prefix}/things/+/jobs/#`,
      );
      expect(failure).toContain('MQTT_URL=...?share=none');
      expect(failure).not.toContain('\n');
    },
  );

  it.skipIf(!BACKENDS.includes('pglite'))(
    'falls back to a plain subscription as the only instance of its store (PGlite) and answers devices',
    async () => {
      const t = await createTestDb('pglite');
      opened.push(t);
      const thing = `probe-${randomBytes(4).toString('hex')}`;
      await insertThings(t.db, [thing], new Date());
      const app: FleetJobs = await startTestServer({
        db: t.db,
        config: { mqttUrl: MOSQUITTO_URL, jobsTopicRoot },
      });
      opened.push(app);
      await createJob(app.deps, { jobId: 'probe-job', targets: [`thing/${thing}`], document: '{"op":"x"}' });
      device = await connectDevice(MOSQUITTO_URL, { clientId: thing });
      const root = `${prefix}/things/${thing}/jobs`;
      await device.subscribeAsync(`${root}/#`, { qos: 1 });
      const started = await deviceRequest(device, `${root}/start-next`, { clientToken: 's' });
      expect(started.json).toMatchObject({
        clientToken: 's',
        execution: { jobId: 'probe-job', status: 'IN_PROGRESS' },
      });
    },
  );
});
