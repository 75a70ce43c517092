/**
 * Database outages under load (issue 12): a TCP fault proxy sits between fleetjobs and the real PostgreSQL while
 * devices run claim -> SUCCEEDED loops over MQTT. Each fault is injected mid-run and lifted; then every
 * acknowledged transition must be in the database, the outbox empty, every job COMPLETED with exact counters,
 * every reply on its own device's topic and within the bound (replies during the fault are InternalError).
 * PostgreSQL only: the embedded PGlite has no network to lose.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createTestDb, TEST_DATABASE_URL, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { createPostgresDb, type Db } from '../../src/store/db.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';
import type { FleetJobs } from '../../src/app.js';

const DEVICES = 30;
const JOBS = 6;
/** What the issue bounds a request's wait on a dead database by. */
const REPLY_BOUND_MS = 5000;
const TIMEOUTS = {
  statementMs: 1500,
  idleInTransactionMs: 3000,
  connectMs: 1000,
  keepAliveMs: 1000,
  unansweredMs: 500,
};

interface Run {
  /** Acknowledged SUCCEEDED updates: thing -> jobIds. */
  acknowledged: Map<string, Set<string>>;
  /** Replies later than REPLY_BOUND_MS, and requests never answered within it. */
  late: number;
  internalErrors: number;
  /** The slowest reply, ms. */
  slowestMs: number;
  wrongDevice: number;
  /** performance.now() of each accepted reply. */
  acceptedAt: number[];
  done: Promise<void>;
}

const url = new URL(TEST_DATABASE_URL);

describe('database outages under load on postgres', { timeout: 45_000 }, () => {
  let t: TestDb;
  let proxy: FaultProxy;
  let db: Db;
  let app: FleetJobs;
  let appName: string;
  let devices: MqttClient[] = [];
  let round = 0;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    appName = `fleetjobs-${t.schema as string}`;
  });
  afterAll(async () => {
    await t.close();
  });

  const start = async () => {
    proxy = await startFaultProxy({ host: url.hostname, port: Number(url.port || 5432) });
    const proxied = new URL(TEST_DATABASE_URL);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    db = createPostgresDb({
      url: proxied.toString(),
      schema: t.schema as string,
      applicationName: appName,
      timeouts: TIMEOUTS,
    });
    app = await startTestServer({ db, workers: { tickMs: 200 } });
  };
  afterEach(async () => {
    await Promise.all(devices.map((d) => d.endAsync(true)));
    devices = [];
    await app.close();
    await db.close();
    await proxy.close();
  });

  /** JOBS jobs on DEVICES fresh things; each device claims and succeeds until nothing is pending. */
  const runFleet = async (): Promise<{ things: string[]; jobIds: string[]; run: Run }> => {
    round++;
    const things = Array.from({ length: DEVICES }, (_, i) => `outage-${round}-${String(i).padStart(2, '0')}`);
    await insertThings(t.db, things, new Date());
    const jobIds: string[] = [];
    for (let j = 0; j < JOBS; j++) {
      const jobId = `outage-${round}-job-${j}`;
      await createJob(app.deps, {
        jobId,
        targets: things.map((th) => `thing/${th}`),
        document: JSON.stringify({ j }),
      });
      jobIds.push(jobId);
    }
    const run: Run = {
      acknowledged: new Map(things.map((th) => [th, new Set<string>()])),
      late: 0,
      internalErrors: 0,
      slowestMs: 0,
      wrongDevice: 0,
      acceptedAt: [],
      done: Promise.resolve(),
    };
    const loops = things.map(async (thing) => {
      const client = await mqtt.connectAsync(app.addresses.mqtt, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        clientId: thing,
      });
      devices.push(client);
      const root = `$aws/things/${thing}/jobs`;
      const waiting = new Map<string, (reply: { topic: string; json: Record<string, unknown> }) => void>();
      let seq = 0;
      client.on('message', (topic, payload) => {
        if (!topic.endsWith('/accepted') && !topic.endsWith('/rejected')) return;
        const json = JSON.parse(payload.toString()) as Record<string, unknown>;
        const token = json.clientToken as string | undefined;
        // Not subscribed to anything: every reply here was routed to this device, and must be to its request.
        if (!topic.startsWith(`${root}/`) || token?.startsWith(`${thing}:`) !== true) {
          run.wrongDevice++;
          return;
        }
        waiting.get(token as string)?.({ topic, json });
      });
      const request = async (
        topic: string,
        body: Record<string, unknown>,
      ): Promise<{ ok: boolean; json: Record<string, unknown> } | undefined> => {
        const clientToken = `${thing}:${++seq}`;
        const sent = performance.now();
        const reply = new Promise<{ topic: string; json: Record<string, unknown> } | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), REPLY_BOUND_MS);
          waiting.set(clientToken, (r) => {
            clearTimeout(timer);
            resolve(r);
          });
        });
        await client.publishAsync(`${root}/${topic}`, JSON.stringify({ ...body, clientToken }), { qos: 1 });
        const r = await reply;
        waiting.delete(clientToken);
        if (r === undefined || performance.now() - sent > REPLY_BOUND_MS) {
          run.late++;
          return undefined;
        }
        run.slowestMs = Math.max(run.slowestMs, performance.now() - sent);
        const ok = r.topic.endsWith('/accepted');
        if (ok) run.acceptedAt.push(performance.now());
        if (!ok && r.json.code === 'InternalError') run.internalErrors++;
        return { ok, json: r.json };
      };
      const pause = () => new Promise((r) => setTimeout(r, 50));
      for (;;) {
        const claimed = await request('start-next', {});
        if (claimed === undefined || !claimed.ok) {
          await pause();
          continue;
        }
        const execution = claimed.json.execution as { jobId: string } | undefined;
        if (execution === undefined) return;
        for (;;) {
          const updated = await request(`${execution.jobId}/update`, { status: 'SUCCEEDED' });
          if (updated?.ok) {
            run.acknowledged.get(thing)?.add(execution.jobId);
            break;
          }
          // An update whose InternalError hid a commit: the retry finds it already SUCCEEDED.
          const state = updated?.json.executionState as { status?: string } | undefined;
          if (state?.status === 'SUCCEEDED') break;
          await pause();
        }
      }
    });
    run.done = Promise.all(loops).then(() => undefined);
    return { things, jobIds, run };
  };

  const waitFor = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
    const until = performance.now() + ms;
    while (!(await check())) {
      if (performance.now() > until) throw new Error(`${what} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const readyz = async () => (await fetch(`${app.addresses.http}/readyz`)).status;

  /** Injects a fault once a fifth of the work is acknowledged, holds it, lifts it; then checks everything. */
  const survive = async (
    inject: () => Promise<void> | void,
    lift: () => Promise<void> | void,
    options: { holdMs?: number; expectNotReady?: boolean } = {},
  ) => {
    await start();
    const { things, jobIds, run } = await runFleet();
    const total = DEVICES * JOBS;
    const count = () => [...run.acknowledged.values()].reduce((n, s) => n + s.size, 0);
    await waitFor('a fifth of the work acknowledged', async () => count() >= total / 5);
    await inject();
    const injectedAt = performance.now();
    if (options.expectNotReady) {
      await waitFor('/readyz non-200 during the fault', async () => (await readyz()) !== 200, 5000);
    }
    await new Promise((r) => setTimeout(r, (options.holdMs ?? 2000) - (performance.now() - injectedAt)));
    await lift();
    const liftedAt = performance.now();
    await waitFor('/readyz 200 after the fault', async () => (await readyz()) === 200, 10_000);
    await run.done;
    const recoveredAt = run.acceptedAt.find((at) => at > liftedAt) ?? liftedAt;

    // 0 acknowledged transitions lost.
    const rows = await t.db.query<{ thingName: string; jobId: string; status: string }>(
      `SELECT thing_name, job_id, status FROM job_executions WHERE thing_name = ANY($1::text[])`,
      [things],
    );
    const lost = rows.filter(
      (r) => run.acknowledged.get(r.thingName)?.has(r.jobId) === true && r.status !== 'SUCCEEDED',
    );
    expect(lost).toEqual([]);
    expect(rows.filter((r) => r.status !== 'SUCCEEDED')).toEqual([]);
    // Outbox drained, every job COMPLETED with exact counters.
    await waitFor('the outbox drained', async () => {
      const [o] = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
      return o?.n === 0;
    });
    await waitFor('every job COMPLETED', async () => {
      const jobs = await t.db.query<{ status: string }>(
        'SELECT status FROM jobs WHERE job_id = ANY($1::text[])',
        [jobIds],
      );
      return jobs.every((j) => j.status === 'COMPLETED');
    });
    for (const jobId of jobIds) {
      const res = await fetch(`${app.addresses.http}/jobs/${jobId}`);
      const body = (await res.json()) as {
        job: { status: string; jobProcessDetails: Record<string, number> };
      };
      expect(body.job.status).toBe('COMPLETED');
      expect(body.job.jobProcessDetails).toMatchObject({
        numberOfSucceededThings: DEVICES,
        numberOfQueuedThings: 0,
        numberOfInProgressThings: 0,
        numberOfFailedThings: 0,
      });
    }
    expect(run.wrongDevice).toBe(0);
    expect(run.late).toBe(0);
    const figures = {
      lost: lost.length,
      late: run.late,
      stuck: rows.filter((r) => r.status !== 'SUCCEEDED').length,
      internalErrors: run.internalErrors,
      slowestReplyMs: Math.round(run.slowestMs),
      secondsToRecover: Number(((recoveredAt - liftedAt) / 1000).toFixed(2)),
    };
    console.log(`fault figures ${expect.getState().currentTestName}: ${JSON.stringify(figures)}`);
    return figures;
  };

  it('survives refused connections (open connections closed, new ones refused)', async () => {
    await survive(
      () => {
        proxy.setMode('refuse');
        proxy.closeAll();
      },
      () => proxy.setMode('pass'),
      { expectNotReady: true },
    );
  });

  it('survives a blackhole: connections that go silent, without RST or FIN, and stay dead', async () => {
    await survive(
      () => proxy.setMode('blackhole'),
      () => proxy.setMode('pass'),
      { expectNotReady: true },
    );
  });

  it('survives a restart (every connection reset, then refused for a while)', async () => {
    await survive(
      () => {
        proxy.setMode('refuse');
        proxy.resetAll();
      },
      () => proxy.setMode('pass'),
      { expectNotReady: true },
    );
  });

  it('survives pg_terminate_backend of its connections', async () => {
    const admin = createPostgresDb({ url: TEST_DATABASE_URL, max: 1, applicationName: `${appName}-admin` });
    try {
      await survive(
        async () => {
          // Only this test's connections: the PostgreSQL is shared.
          const killed = await admin.query<{ ok: boolean }>(
            `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
            [appName],
          );
          expect(killed.length).toBeGreaterThan(0);
        },
        () => undefined,
        { holdMs: 500 },
      );
    } finally {
      await admin.close();
    }
  });

  it('survives a hanging statement (row locks held past statement_timeout)', async () => {
    const holder = createPostgresDb({ url: TEST_DATABASE_URL, max: 1, schema: t.schema as string });
    let release: () => void = () => {};
    let held: Promise<unknown> = Promise.resolve();
    try {
      await survive(
        async () => {
          let locked: () => void = () => {};
          const isLocked = new Promise<void>((r) => (locked = r));
          held = holder
            .transaction(async (tx) => {
              await tx.query(`SET LOCAL statement_timeout = 0`);
              await tx.query(`SELECT 1 FROM things WHERE thing_name LIKE $1 FOR UPDATE`, [
                `outage-${round}-%`,
              ]);
              locked();
              await new Promise<void>((r) => (release = r));
            })
            .catch(() => undefined);
          await isLocked;
        },
        async () => {
          release();
          await held;
        },
        { holdMs: 2500 },
      );
    } finally {
      release();
      await held;
      await holder.close();
    }
  });
});
