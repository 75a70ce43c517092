import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import type { FleetJobs } from '../../src/app.js';
import { agentPool, nextEvent, operator } from './helpers.js';

const MOSQUITTO = process.env.TEST_MOSQUITTO_URL ?? 'mqtt://127.0.0.1:1883';

describe('the device agent through an external Mosquitto (PostgreSQL)', () => {
  let t: TestDb;
  let app: FleetJobs;
  // A root of its own keeps this file's devices and server apart from anything else on the shared broker.
  const topicRoot = `fj-${randomBytes(4).toString('hex')}/{thingName}/jobs`;
  const pool = agentPool(() => MOSQUITTO);

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db, config: { mqttUrl: MOSQUITTO, jobsTopicRoot: topicRoot } });
  });
  afterAll(async () => {
    await pool.stopAll();
    await app?.close();
    await t?.close();
  });

  it('runs a job under a custom topic root, with replies coming through its subscriptions', async () => {
    const ops = operator(app);
    await ops.createThing('mq-dev');
    const agent = await pool.start('mq-dev', { topicRoot });
    const done = nextEvent(agent, 'job:done');
    await ops.createJob('mq-job', 'mq-dev', {
      version: '1.0',
      includeStdOut: true,
      steps: [{ action: { name: 'echo', type: 'runCommand', input: { command: 'echo,via mosquitto' } } }],
    });
    expect(await done).toMatchObject({
      jobId: 'mq-job',
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'via mosquitto' },
    });
    expect((await ops.execution('mq-dev', 'mq-job')).status).toBe('SUCCEEDED');
  });
});
