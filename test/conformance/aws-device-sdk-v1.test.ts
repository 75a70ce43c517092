import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import awsIot from 'aws-iot-device-sdk';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { createTestCa, type Issued, writeServerTls } from '../helpers/certs.js';
import { connectDevice, waitForMessage } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';

interface V1Job {
  id: string;
  document: Record<string, unknown>;
  operation: string;
  status: { status: string };
  succeeded(details: Record<string, string>, cb: (err?: Error) => void): void;
  failed(details: Record<string, string>, cb: (err?: Error) => void): void;
}

/** The unmodified AWS IoT Device SDK v1 jobs API over mTLS, only the endpoint, port and CA changed. */
describe('aws-iot-device-sdk (v1) jobs API over mTLS', () => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let caPem: string;
  let device: Issued;
  const thing = 'v1-thing';

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-v1-'));
    const ca = createTestCa('fleetjobs v1 test CA');
    const server = ca.issue('localhost', { server: true });
    device = ca.issue(thing);
    caPem = ca.cert;
    const tls = await writeServerTls(dir, ca, server);
    await insertThings(t.db, [thing], new Date());
    app = await startTestServer({
      db: t.db,
      config: {
        mqttsPort: 0,
        ...tls,
      },
    });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gets a QUEUED job from $next/get, the next one from notify-next, and reports both from QUEUED', async () => {
    await createJob(app.deps, {
      jobId: 'v1-first',
      targets: [`thing/${thing}`],
      document: JSON.stringify({ operation: 'install', package: 'a' }),
    });
    const port = Number(new URL(app.addresses.mqtts as string).port);
    const jobs = awsIot.jobs({
      privateKey: Buffer.from(device.key),
      clientCert: Buffer.from(device.cert),
      caCert: Buffer.from(caPem),
      clientId: thing,
      host: '127.0.0.1',
      port,
      reconnectPeriod: 0,
    });
    const connected = new Promise<void>((resolve) => jobs.once('connect', () => resolve()));
    try {
      // An observer sees the pending set empty once both of the SDK's updates (QoS 0, no reply awaited) applied.
      const observer = await connectDevice(app.addresses.mqtt);
      await observer.subscribeAsync(`$aws/things/${thing}/jobs/notify`, { qos: 1 });
      // It empties twice: after the first job succeeds and after the second fails. The SDK's callback fires when
      // its QoS 0 update is sent, not applied, so the second job is created once the first empty set is seen.
      const empty = (m: { json: { jobs: object } }) => Object.keys(m.json.jobs).length === 0;
      const firstEmpty = waitForMessage(observer, `$aws/things/${thing}/jobs/notify`, empty, 10_000);
      const drained = firstEmpty.then(() =>
        waitForMessage(observer, `$aws/things/${thing}/jobs/notify`, empty, 10_000),
      );
      const received: { id: string; status: string; pkg: unknown }[] = [];
      const reported = new Promise<void>((resolve, reject) => {
        jobs.subscribeToJobs(thing, 'install', (err: Error | null, job: V1Job) => {
          if (err) return reject(err);
          if (received.some((j) => j.id === job.id)) return;
          received.push({ id: job.id, status: job.status.status, pkg: job.document.package });
          if (job.id === 'v1-first') {
            job.succeeded({ result: 'installed' }, (e) => {
              if (e) return reject(e);
              firstEmpty
                .then(() =>
                  createJob(app.deps, {
                    jobId: 'v1-second',
                    targets: [`thing/${thing}`],
                    document: JSON.stringify({ operation: 'install', package: 'b' }),
                  }),
                )
                .catch(reject);
            });
          } else {
            job.failed({ result: 'disk full' }, (e) => (e ? reject(e) : resolve()));
          }
        });
      });
      await connected;
      jobs.startJobNotifications(thing, (err?: Error) => expect(err ?? undefined).toBeUndefined());
      await reported;
      await drained;
      await observer.endAsync();

      expect(received).toEqual([
        { id: 'v1-first', status: 'QUEUED', pkg: 'a' },
        { id: 'v1-second', status: 'QUEUED', pkg: 'b' },
      ]);
      const rows = await t.db.query(
        `SELECT job_id, status, status_details FROM job_executions WHERE thing_name = $1 ORDER BY job_id`,
        [thing],
      );
      expect(rows).toEqual([
        { jobId: 'v1-first', status: 'SUCCEEDED', statusDetails: { result: 'installed' } },
        { jobId: 'v1-second', status: 'FAILED', statusDetails: { result: 'disk full' } },
      ]);
    } finally {
      await new Promise<void>((resolve) => jobs.end(true, () => resolve()));
    }
  });
});
