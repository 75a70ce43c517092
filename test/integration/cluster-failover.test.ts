import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnChild, type Child } from '../../bench/lib/child.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { recordMessages, waitForMessage, type Received } from '../helpers/mqtt.js';
import { takeRedisDb } from '../helpers/redis.js';
import type { NodeStartArgs } from '../helpers/fleetjobs-node.js';

// Each node is a child process that compiles the server at start (tsx): seconds each on a busy machine.
/**
 * kill -9 of fleetjobs nodes, each a child process, on PostgreSQL (cluster mode needs it; a PGlite store belongs
 * to one process, and the restart of a single node on it is covered in session-catch-up.test.ts).
 */
const RUN = randomBytes(3).toString('hex');
const NODE = new URL('../helpers/fleetjobs-node.ts', import.meta.url);
const rootOf = (name: string) => `$aws/things/${name}/jobs`;

interface Node {
  child: Child;
  http: string;
  mqtt: string;
}

async function startNode(args: NodeStartArgs): Promise<Node> {
  const child = await spawnChild(NODE);
  const addresses = await child.call<{ http: string; mqtt: string }>('start', args);
  return { child, ...addresses };
}

async function rest(node: Node, method: string, path: string, body?: object): Promise<number> {
  const res = await fetch(`${node.http}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.arrayBuffer();
  return res.status;
}

function connect(
  url: string,
  clientId: string,
): Promise<{ client: MqttClient; seen: Received[]; sessionPresent: boolean }> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId,
    clean: false,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  const seen = recordMessages(client, '#');
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, seen, sessionPresent: connack.sessionPresent }));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

/**
 * A device as an AWS SDK sample writes one: it works each execution notify-next announces (straight to
 * SUCCEEDED, expectedVersion given), and on every (re)connect asks for `$next` once. When its node dies it
 * reconnects to the next live node with clean=false, and like an SDK it tries again (the next live node) when a
 * node gives no CONNACK within the connect timeout, which a node starved of CPU may not.
 */
class Device {
  client: MqttClient | undefined;
  /** Every notify-next naming a job, by jobId. */
  readonly announced = new Map<string, number>();
  /** Updates to SUCCEEDED the service accepted: the acknowledged transitions. */
  readonly acknowledged = new Set<string>();
  /** ms from CONNACK on a new node to the first accepted reply there, per failover. */
  readonly servedAfterReconnectMs: number[] = [];
  /** ms from the loss of the connection to that reply. */
  readonly servedAfterLossMs: number[] = [];
  /** Jobs a `$next/get` after a reconnect returned: their notify-next may be dropped as stale (protocol §3). */
  readonly fetchedAfterReconnect = new Set<string>();
  /** Connect attempts that got no CONNACK. */
  failedConnects = 0;
  private ended = false;
  private working = new Set<string>();
  private lostAt: number | undefined;

  constructor(
    readonly name: string,
    private readonly nodes: () => Node[],
    private node: number,
  ) {}

  async connect(): Promise<void> {
    let attempt: Awaited<ReturnType<typeof connect>> | undefined;
    while (attempt === undefined) {
      try {
        attempt = await connect((this.nodes()[this.node] as Node).mqtt, this.name);
      } catch (err) {
        // The first connect of each device is the test's setup: a failure there fails the test.
        if (this.lostAt === undefined) throw err;
        if (this.ended) return;
        this.failedConnects += 1;
        this.node = (this.node + 1) % this.nodes().length;
      }
    }
    const { client, sessionPresent } = attempt;
    if (this.ended) {
      await client.endAsync(true);
      return;
    }
    this.client = client;
    const connackAt = performance.now();
    client.on('message', (topic, payload) => this.onMessage(topic, payload, connackAt));
    client.once('close', () => this.onClose());
    if (!sessionPresent) await client.subscribeAsync(`${rootOf(this.name)}/notify-next`, { qos: 1 });
    this.working.clear();
    client.publish(`${rootOf(this.name)}/$next/get`, JSON.stringify({ clientToken: 'next' }), { qos: 1 });
  }

  private onMessage(topic: string, payload: Buffer, connackAt: number): void {
    const root = rootOf(this.name);
    const body = JSON.parse(payload.toString()) as {
      execution?: { jobId: string; versionNumber: number };
      clientToken?: string;
    };
    if (topic === `${root}/$next/get/accepted` && body.execution && this.lostAt !== undefined)
      this.fetchedAfterReconnect.add(body.execution.jobId);
    if (topic.endsWith('/accepted') && this.lostAt !== undefined) {
      this.servedAfterReconnectMs.push(performance.now() - connackAt);
      this.servedAfterLossMs.push(performance.now() - this.lostAt);
      this.lostAt = undefined;
    }
    if (topic === `${root}/notify-next` && body.execution !== undefined) {
      this.announced.set(body.execution.jobId, (this.announced.get(body.execution.jobId) ?? 0) + 1);
    }
    if ((topic === `${root}/notify-next` || topic === `${root}/$next/get/accepted`) && body.execution)
      this.work(body.execution);
    const updated = /\/([^/]+)\/update\/accepted$/.exec(topic);
    if (updated) this.acknowledged.add(updated[1] as string);
  }

  private work(execution: { jobId: string; versionNumber: number }): void {
    if (this.working.has(execution.jobId) || this.acknowledged.has(execution.jobId)) return;
    this.working.add(execution.jobId);
    this.client?.publish(
      `${rootOf(this.name)}/${execution.jobId}/update`,
      JSON.stringify({ status: 'SUCCEEDED', expectedVersion: execution.versionNumber }),
      { qos: 1 },
    );
  }

  private onClose(): void {
    if (this.client === undefined) return;
    this.client = undefined;
    this.lostAt = performance.now();
    const live = this.nodes();
    this.node = (this.node + 1) % live.length;
    void this.connect();
  }

  async end(): Promise<void> {
    this.ended = true;
    const c = this.client;
    this.client = undefined;
    await c?.endAsync(true);
  }
}

async function until(what: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(BACKENDS.includes('postgres'))('fleetjobs nodes killed with SIGKILL, on postgres', () => {
  let t: TestDb;
  const children: Child[] = [];
  const devices: Device[] = [];
  const pending = async (jobPrefix: string) =>
    (
      await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM job_executions WHERE job_id LIKE $1 AND status IN ('QUEUED', 'IN_PROGRESS')`,
        [`${jobPrefix}%`],
      )
    )[0]?.n ?? -1;

  beforeAll(async () => {
    t = await createTestDb('postgres');
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.end()));
    await Promise.all(children.map((c) => c.kill()));
    await t?.close();
  });

  it('kill -9 of one of three nodes under load loses no acknowledged transition and no notification', async () => {
    const redis = await takeRedisDb(14);
    try {
      let live = await Promise.all(
        [0, 1, 2].map(() =>
          startNode({ url: t.url as string, schema: t.schema as string, redisUrl: redis.url }),
        ),
      );
      children.push(...live.map((n) => n.child));
      const names = Array.from({ length: 30 }, (_, i) => `fo-${RUN}-${i}`);
      for (const n of names) expect(await rest(live[0] as Node, 'POST', `/things/${n}`, {})).toBe(200);
      const fleet = names.map((n, i) => new Device(n, () => live, i % 3));
      devices.push(...fleet);
      await Promise.all(fleet.map((d) => d.connect()));

      const jobs = Array.from({ length: 16 }, (_, i) => `fo-${RUN}-job-${String(i).padStart(2, '0')}`);
      const victim = live[2] as Node;
      for (const [i, jobId] of jobs.entries()) {
        const creator = live[i % live.length] as Node;
        expect(
          await rest(creator, 'PUT', `/jobs/${jobId}`, {
            targets: names.map((n) => `thing/${n}`),
            document: '{}',
          }),
        ).toBe(200);
        if (i === 5) {
          // Devices are working the first jobs on every node when this one dies.
          live = live.filter((n) => n !== victim);
          await victim.child.kill();
        }
      }
      await until(
        'every execution of every job ended',
        async () => (await pending(`fo-${RUN}-job`)) === 0,
        60_000,
      );

      const rows = await t.db.query<{ thingName: string; jobId: string; status: string }>(
        `SELECT thing_name, job_id, status FROM job_executions WHERE job_id LIKE $1`,
        [`fo-${RUN}-job%`],
      );
      const succeeded = new Set(
        rows.filter((r) => r.status === 'SUCCEEDED').map((r) => `${r.thingName}/${r.jobId}`),
      );
      const acknowledged = fleet.flatMap((d) => [...d.acknowledged].map((j) => `${d.name}/${j}`));
      const lostTransitions = acknowledged.filter((k) => !succeeded.has(k)).length;
      // Named, so that a failure says which device missed which job's notify-next. A job a moved device fetched
      // with `$next/get` on reconnecting is not owed one: a notify-next queued on the dead node and published
      // after that device already finished the job names a finished execution and is dropped (protocol §3).
      const lostNotifications = fleet.flatMap((d) =>
        jobs
          .filter((j) => !d.announced.has(j) && !d.fetchedAfterReconnect.has(j))
          .map((j) => `${d.name}/${j}`),
      );
      const staleDropped = fleet.reduce(
        (n, d) => n + jobs.filter((j) => !d.announced.has(j) && d.fetchedAfterReconnect.has(j)).length,
        0,
      );
      const duplicates = fleet.reduce((n, d) => n + [...d.announced.values()].filter((c) => c > 1).length, 0);
      const moved = fleet.filter((d) => d.servedAfterReconnectMs.length > 0);
      const failedConnects = fleet.reduce((n, d) => n + d.failedConnects, 0);
      const served = moved.flatMap((d) => d.servedAfterReconnectMs);
      const sinceLoss = moved.flatMap((d) => d.servedAfterLossMs);
      console.log(
        `kill -9 of 1 of 3 nodes: ${acknowledged.length} acknowledged transitions, ${lostTransitions} lost; ` +
          `${names.length * jobs.length} notifications due, ${lostNotifications.length} lost, ${duplicates} repeated, ${staleDropped} stale ` +
          `(fetched on reconnecting); ` +
          `${moved.length} devices moved, served ${Math.max(...served).toFixed(0)} ms after reconnecting at most ` +
          `(${Math.max(...sinceLoss).toFixed(0)} ms after losing their node, ${failedConnects} connects without CONNACK)`,
      );
      expect(rows).toHaveLength(names.length * jobs.length);
      expect(succeeded.size).toBe(names.length * jobs.length);
      expect(lostTransitions).toBe(0);
      expect(lostNotifications).toEqual([]);
      expect(moved.length).toBe(10);
      expect(Math.max(...served)).toBeLessThan(5_000);
    } finally {
      await Promise.all(devices.splice(0).map((d) => d.end()));
      await Promise.all(children.splice(0).map((c) => c.kill()));
      await redis.release();
    }
  }, 120_000);

  it('a single node killed with SIGKILL and started again sends an offline device the notify-next it missed', async () => {
    const args = { url: t.url as string, schema: t.schema as string };
    const first = await startNode(args);
    children.push(first.child);
    const name = `solo-${RUN}`;
    expect(await rest(first, 'POST', `/things/${name}`, {})).toBe(200);
    const before = await connect(first.mqtt, name);
    await before.client.subscribeAsync(`${rootOf(name)}/notify-next`, { qos: 1 });
    await before.client.endAsync();
    expect(
      await rest(first, 'PUT', `/jobs/solo-${RUN}`, {
        targets: [`thing/${name}`],
        document: '{"op":"solo"}',
      }),
    ).toBe(200);
    await first.child.kill();

    const second = await startNode(args);
    children.push(second.child);
    const after = await connect(second.mqtt, name);
    expect(after.sessionPresent).toBe(false);
    const next =
      after.seen.find((m) => m.topic.endsWith('/notify-next')) ??
      (await waitForMessage(after.client, `${rootOf(name)}/notify-next`));
    expect(next.json.execution).toMatchObject({
      jobId: `solo-${RUN}`,
      status: 'QUEUED',
      jobDocument: { op: 'solo' },
    });
    await after.client.endAsync();
  }, 120_000);
});
