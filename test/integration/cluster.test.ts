import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FleetJobs } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { main } from '../../src/cli/main.js';
import { BACKENDS, createTestDb, TEST_DATABASE_URL, type TestDb } from '../helpers/db.js';
import { deviceRequest, recordMessages, waitForMessage, type Received } from '../helpers/mqtt.js';
import { spyOnRedisChannels, takeRedisDb } from '../helpers/redis.js';
import { startTestServer } from '../helpers/server.js';

// Pub/sub channels are shared by every Redis database: thing names of this file's own.
const RUN = randomBytes(3).toString('hex');
const thing = (name: string) => `cl-${RUN}-${name}`;
const rootOf = (name: string) => `$aws/things/${name}/jobs`;
const T0 = new Date('2026-04-01T00:00:00Z');

/** Connects with the listener attached before CONNACK, so messages queued in the session are all seen. */
function connect(
  url: string,
  options: IClientOptions,
): Promise<{ client: MqttClient; seen: Received[]; sessionPresent: boolean }> {
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

/** Resolves once a message on `topic` was seen, before or after this call. */
async function seenOn(c: { client: MqttClient; seen: Received[] }, topic: string): Promise<void> {
  if (c.seen.some((m) => m.topic === topic)) return;
  await waitForMessage(c.client, topic);
}

describe('cluster mode configuration', () => {
  it('needs DATABASE_URL, and refuses MQTT_URL beside it, each with one line naming the fix', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(
      /^REDIS_URL \(cluster mode\) needs DATABASE_URL.*unset REDIS_URL$/,
    );
    expect(() =>
      loadConfig({ REDIS_URL: 'redis://h', DATABASE_URL: 'postgres://h/db', MQTT_URL: 'mqtt://h:1883' }),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'http://h', DATABASE_URL: 'postgres://h/db' })).toThrow(
      /^REDIS_URL must look like redis:\/\/host:6379/,
    );
  });

  it('stops `fleetjobs serve` with exit code 2 and one line naming REDIS_URL when Redis is unreachable', async () => {
    const errors: string[] = [];
    const spy = vi
      .spyOn(console, 'error')
      .mockImplementation((line: unknown) => void errors.push(String(line)));
    try {
      const code = await main([
        'serve',
        '--redis-url',
        'redis://127.0.0.1:1',
        '--database-url',
        TEST_DATABASE_URL,
        '--http-port',
        '0',
        '--mqtt-port',
        '0',
        '--auth-mode',
        'off',
        '--log-level',
        'silent',
      ]);
      expect(code).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^REDIS_URL: cannot connect to 127\.0\.0\.1:1 \(ECONNREFUSED\); start Redis there/,
    );
  });
});

describe.each(BACKENDS)('three fleetjobs nodes clustered over Redis, on %s', (backend) => {
  let t: TestDb;
  let redis: { url: string; release(): Promise<void> };
  const nodes: FleetJobs[] = [];
  const clients: MqttClient[] = [];
  let now = T0;
  const rest = async (node: FleetJobs, method: string, path: string, body?: object) => {
    const res = await fetch(`${node.addresses.http}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const device = async (node: number, name: string, options: IClientOptions = {}) => {
    const c = await connect((nodes[node] as FleetJobs).addresses.mqtt, { clientId: name, ...options });
    clients.push(c.client);
    return c;
  };
  const things = async (names: string[]) => {
    for (const n of names)
      expect((await rest(nodes[0] as FleetJobs, 'POST', `/things/${n}`, {})).status).toBe(200);
  };
  const drainOutbox = async () => {
    for (let i = 0; ; i++) {
      const left = (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`))[0]?.n ?? 0;
      if (left === 0) return;
      if (i > 100) throw new Error('the outbox did not drain');
      await Promise.all(nodes.map((n) => n.dispatcher.runOnce()));
    }
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    if (backend === 'pglite') return;
    redis = await takeRedisDb(13);
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startTestServer({
          db: t.db,
          config: { redisUrl: redis.url },
          clock: () => now,
          workers: { autoStart: false },
        }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const n of nodes) await n.close();
    await redis?.release();
    await t?.close();
  });

  it.runIf(backend === 'pglite')('is refused on PGlite with one line', async () => {
    await expect(
      startTestServer({ db: t.db, config: { redisUrl: 'redis://127.0.0.1:6379/13' } }),
    ).rejects.toThrow(
      /^REDIS_URL \(cluster mode\) needs PostgreSQL; the embedded PGlite belongs to one process$/,
    );
  });

  it.runIf(backend === 'postgres')(
    'fans a job out to devices spread over the nodes, each notified exactly once, each reply to its requester only',
    async () => {
      const names = Array.from({ length: 12 }, (_, i) => thing(`fan-${i}`));
      const spy = await spyOnRedisChannels(redis.url);
      try {
        await things(names);
        const first = await Promise.all(names.map((name, i) => device(i % 3, name, { clean: false })));
        await Promise.all(
          first.map((d, i) =>
            d.client.subscribeAsync(`${rootOf(names[i] as string)}/notify-next`, { qos: 1 }),
          ),
        );
        // Back with the session present: a fresh session's catch-up (a snapshot read after its SUBSCRIBE) may
        // land after the job below and repeat its notify-next, as documented; here only the fan-out speaks.
        await Promise.all(first.map((d) => d.client.endAsync()));
        const devices = await Promise.all(names.map((name, i) => device(i % 3, name, { clean: false })));
        expect(devices.map((d) => d.sessionPresent)).toEqual(names.map(() => true));
        // Sees every device's topics from another node (AUTH_MODE=off): notifications, never replies.
        const watcher = await device(2, thing('watcher'));
        await watcher.client.subscribeAsync('$aws/things/+/jobs/#', { qos: 1 });

        const created = await rest(nodes[0] as FleetJobs, 'PUT', `/jobs/fan-${RUN}`, {
          targets: names.map((n) => `thing/${n}`),
          document: '{"op":"fan"}',
        });
        expect(created.status).toBe(200);
        await Promise.all(
          devices.map((d, i) =>
            waitForMessage(
              d.client,
              `${rootOf(names[i] as string)}/notify-next`,
              (m) => m.json?.execution?.jobId === `fan-${RUN}`,
            ),
          ),
        );
        await drainOutbox();
        // Each device starts its execution on its own node: the reply comes back to it alone.
        const replies = await Promise.all(
          devices.map((d, i) =>
            deviceRequest(d.client, `${rootOf(names[i] as string)}/start-next`, { clientToken: `tok-${i}` }),
          ),
        );
        for (const [i, r] of replies.entries()) {
          expect(r.outcome).toBe('accepted');
          expect(r.json.clientToken).toBe(`tok-${i}`);
          expect(r.json.execution.jobId).toBe(`fan-${RUN}`);
        }
        for (const [i, d] of devices.entries()) {
          const own = rootOf(names[i] as string);
          const nexts = d.seen.filter(
            (m) => m.topic === `${own}/notify-next` && m.json?.execution?.jobId === `fan-${RUN}`,
          );
          expect(nexts).toHaveLength(1);
          expect(d.seen.filter((m) => m.topic.endsWith('/accepted'))).toHaveLength(1);
          expect(d.seen.every((m) => m.topic.startsWith(own))).toBe(true);
        }
        const watched = watcher.seen.filter((m) => m.topic.endsWith('/notify-next'));
        expect(watched.map((m) => m.topic).sort()).toEqual(
          names.map((n) => `${rootOf(n)}/notify-next`).sort(),
        );
        expect(watcher.seen.some((m) => /\/(accepted|rejected)$/.test(m.topic))).toBe(false);
        // Replies never cross Redis: no channel carried one.
        expect(spy.channels.some((c) => c.endsWith('/accepted') || c.endsWith('/rejected'))).toBe(false);
        expect(spy.channels.some((c) => c.endsWith('/notify-next'))).toBe(true);
      } finally {
        await spy.close();
      }
    },
  );

  it.runIf(backend === 'postgres')(
    'acknowledges a SUBSCRIBE of several filters by a clean=false device (aedes 1.2 with Redis sessions hung it)',
    async () => {
      const name = thing('multi');
      const d = await device(1, name, { clean: false });
      const granted = await d.client.subscribeAsync(
        [`${rootOf(name)}/notify`, `${rootOf(name)}/notify-next`, `${rootOf(name)}/+/accepted`],
        { qos: 1 },
      );
      expect(granted.map((g) => g.qos)).toEqual([1, 1, 1]);
    },
  );

  it.runIf(backend === 'postgres')(
    'keeps the session of a device that moves from one node to another with clean=false, with its queued notify-next',
    async () => {
      const name = thing('mover');
      await things([name]);
      const first = await device(0, name, { clean: false });
      await first.client.subscribeAsync(`${rootOf(name)}/notify-next`, { qos: 1 });
      await first.client.endAsync();

      const created = await rest(nodes[1] as FleetJobs, 'PUT', `/jobs/move-${RUN}`, {
        targets: [`thing/${name}`],
        document: '{"op":"move"}',
      });
      expect(created.status).toBe(200);
      await drainOutbox();

      const moved = await device(2, name, { clean: false });
      expect(moved.sessionPresent).toBe(true);
      await seenOn(moved, `${rootOf(name)}/notify-next`);
      // A round trip on the new node: anything else queued has arrived by now.
      expect(
        (await deviceRequest(moved.client, `${rootOf(name)}/get`, { clientToken: 'sync' })).outcome,
      ).toBe('accepted');
      const all = moved.seen.filter((m) => m.topic === `${rootOf(name)}/notify-next`);
      expect(all).toHaveLength(1);
      expect(all[0]?.json.execution.jobId).toBe(`move-${RUN}`);
    },
  );

  it.runIf(backend === 'postgres')(
    'sends a device subscribed to notify and notify-next both, in order, while another persistent session watches notify',
    async () => {
      const name = thing('both');
      await things([name]);
      // notify now has one more stored subscriber than notify-next, so storing it for them takes longer.
      const watcher = await device(0, thing('notify-watcher'), { clean: false });
      await watcher.client.subscribeAsync('$aws/things/+/jobs/notify', { qos: 1 });
      const d = await device(1, name, { clean: false });
      await d.client.subscribeAsync([`${rootOf(name)}/notify`, `${rootOf(name)}/notify-next`], { qos: 1 });

      const created = await rest(nodes[2] as FleetJobs, 'PUT', `/jobs/both-${RUN}`, {
        targets: [`thing/${name}`],
        document: '{"op":"both"}',
      });
      expect(created.status).toBe(200);
      await drainOutbox();
      // Published after notify: once it is in, notify is too.
      await seenOn(d, `${rootOf(name)}/notify-next`);
      const own = d.seen.filter((m) => m.topic.startsWith(rootOf(name)));
      expect(own.map((m) => m.topic)).toEqual([`${rootOf(name)}/notify`, `${rootOf(name)}/notify-next`]);
      expect(own[0]?.json.jobs.QUEUED.map((j: { jobId: string }) => j.jobId)).toEqual([`both-${RUN}`]);
      await seenOn(watcher, `${rootOf(name)}/notify`);
    },
  );

  it.runIf(backend === 'postgres')(
    'runs rollout and timeout passes on all three nodes at once without doing any work twice',
    async () => {
      const rate = Array.from({ length: 25 }, (_, i) => thing(`rate-${i}`));
      await things(rate);
      now = T0;
      const rolled = await rest(nodes[0] as FleetJobs, 'PUT', `/jobs/rate-${RUN}`, {
        targets: rate.map((n) => `thing/${n}`),
        document: '{}',
        jobExecutionsRolloutConfig: { maximumPerMinute: 10 },
      });
      expect(rolled.status).toBe(200);
      const count = async (jobId: string, status?: string) =>
        (
          await t.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM job_executions WHERE job_id = $1 AND ($2::text IS NULL OR status = $2)`,
            [jobId, status ?? null],
          )
        )[0]?.n;
      expect(await count(`rate-${RUN}`)).toBe(10);
      const passes = async (at: Date, worker: 'rollout' | 'timeouts') =>
        (await Promise.all(nodes.map((n) => n.workers[worker].runOnce(at)))).reduce((a, b) => a + b, 0);
      expect(await passes(new Date(T0.getTime() + 60_000), 'rollout')).toBe(10);
      expect(await passes(new Date(T0.getTime() + 61_000), 'rollout')).toBe(0);
      expect(await count(`rate-${RUN}`)).toBe(20);

      const slow = Array.from({ length: 6 }, (_, i) => thing(`slow-${i}`));
      await things(slow);
      const timed = await rest(nodes[1] as FleetJobs, 'PUT', `/jobs/timeout-${RUN}`, {
        targets: slow.map((n) => `thing/${n}`),
        document: '{}',
        timeoutConfig: { queuedTimeoutInMinutes: 5 },
      });
      expect(timed.status).toBe(200);
      expect(await passes(new Date(T0.getTime() + 5 * 60_000), 'timeouts')).toBe(6);
      expect(await count(`timeout-${RUN}`, 'TIMED_OUT')).toBe(6);
      const versions = await t.db.query<{ versionNumber: number }>(
        `SELECT version_number FROM job_executions WHERE job_id = $1`,
        [`timeout-${RUN}`],
      );
      expect(versions.map((v) => v.versionNumber)).toEqual([2, 2, 2, 2, 2, 2]);
      await drainOutbox();
    },
  );
});
