/**
 * The process that runs the server under test (baseline or fleetjobs), so that its CPU, RSS and event-loop
 * delay are measured alone, apart from the load generators and the orchestrator.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Aedes } from 'aedes';
import { pino } from 'pino';
import { serve } from './child.js';
import { benchApplicationName, processMeter } from './metrics.js';
import { createBroker, type EmbeddedBroker } from '../../broker/index.js';
import { createDeviceRouter } from '../../src/device/router.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import type { Db, Queryable } from '../../src/store/db.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { createJob } from '../../src/service/create-job.js';
import { loadConfig } from '../../src/config.js';
import { createPostgresDb } from '../../src/store/db.js';

export type ServerKind =
  /** Plain Aedes with an ack-first in-process echo on `{root}/get` (protocol fact 2). */
  | 'aedes-echo'
  /** fleetjobs' broker and device router, over a store that answers every query at once with no rows. */
  | 'fleetjobs-router'
  /**
   * The broker floor of S3: plain Aedes answering start-next and update from memory (no database), with the
   * replies and the notify-next that fleetjobs sends; ack-first like the echo.
   */
  | 'aedes-jobs'
  /** The whole fleetjobs server (createFleetJobs) on PostgreSQL, auth off, every listener on port 0. */
  | 'fleetjobs';

export interface StartArgs {
  kind: ServerKind;
  host: string;
  /** fleetjobs: the database and the bench schema it was seeded in. */
  url?: string;
  schema?: string;
  poolMax?: number;
  /** fleetjobs: run the service clock this far behind real time until setClockBehind(0) (S6). */
  clockBehindMs?: number;
  /** fleetjobs: cluster mode over this Redis (S8). */
  redisUrl?: string;
  /** aedes-jobs: the things and how many QUEUED executions each holds, as seedFleet seeds them. */
  memoryFleet?: { thingNames: string[]; jobs: number };
}

const meter = processMeter('server');
let close: (() => Promise<void>) | undefined;
let app: FleetJobs | undefined;
let plainAedes: Aedes | undefined;
let clockBehindMs = 0;

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function startAedesEcho(host: string): Promise<number> {
  const aedes = await Aedes.createBroker({ drainTimeout: 10_000 });
  plainAedes = aedes;
  // Ack the delivery first, then reply: replying before the callback wedges Aedes beyond `concurrency`.
  aedes.subscribe(
    '$aws/things/+/jobs/get',
    (packet, cb) => {
      cb();
      let clientToken: unknown;
      try {
        clientToken = (JSON.parse(packet.payload.toString()) as { clientToken?: unknown }).clientToken;
      } catch {
        clientToken = undefined;
      }
      const reply = {
        clientToken,
        timestamp: Math.floor(Date.now() / 1000),
        inProgressJobs: [],
        queuedJobs: [],
      };
      aedes.publish(
        {
          cmd: 'publish',
          topic: `${packet.topic}/accepted`,
          payload: Buffer.from(JSON.stringify(reply)),
          qos: 1,
          retain: false,
          dup: false,
        },
        () => {},
      );
    },
    () => {},
  );
  const server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
  const port = await listen(server, host);
  close = async () => {
    // Aedes first: it ends the client connections that server.close() would otherwise wait for.
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  };
  return port;
}

interface MemoryExecution {
  jobId: string;
  status: 'QUEUED' | 'IN_PROGRESS';
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
  versionNumber: number;
  executionNumber: number;
  jobDocument: unknown;
}

/**
 * S3's broker floor: what a server that keeps every execution in memory can do on the same broker and topics.
 * Each thing's QUEUED executions in job order; start-next claims the head, update SUCCEEDED (with
 * expectedVersion) removes it and publishes notify-next with the new head, as fleetjobs does.
 */
async function startAedesJobs(host: string, fleet: { thingNames: string[]; jobs: number }): Promise<number> {
  const aedes = await Aedes.createBroker({ drainTimeout: 10_000 });
  plainAedes = aedes;
  const epoch = Math.floor(Date.now() / 1000);
  const queues = new Map<string, MemoryExecution[]>();
  for (const thing of fleet.thingNames) {
    queues.set(
      thing,
      Array.from({ length: fleet.jobs }, (_, j) => ({
        jobId: `bench-job-${String(j).padStart(4, '0')}`,
        status: 'QUEUED' as const,
        queuedAt: epoch,
        lastUpdatedAt: epoch,
        versionNumber: 1,
        executionNumber: 1,
        jobDocument: { operation: 'bench', step: j },
      })),
    );
  }
  const send = (topic: string, body: unknown) =>
    aedes.publish(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from(JSON.stringify(body)),
        qos: 1,
        retain: false,
        dup: false,
      },
      () => {},
    );
  const tokenOf = (payload: Buffer | string): unknown => {
    try {
      return (JSON.parse(payload.toString()) as { clientToken?: unknown }).clientToken;
    } catch {
      return undefined;
    }
  };
  aedes.subscribe(
    '$aws/things/+/jobs/start-next',
    (packet, cb) => {
      cb();
      const thing = packet.topic.split('/')[2] as string;
      const head = queues.get(thing)?.[0];
      const now = Math.floor(Date.now() / 1000);
      if (head?.status === 'QUEUED') {
        head.status = 'IN_PROGRESS';
        head.versionNumber += 1;
        head.startedAt = now;
        head.lastUpdatedAt = now;
      }
      const reply: Record<string, unknown> = { clientToken: tokenOf(packet.payload), timestamp: now };
      if (head) reply.execution = { ...head, thingName: thing };
      send(`${packet.topic}/accepted`, reply);
    },
    () => {},
  );
  aedes.subscribe(
    '$aws/things/+/jobs/+/update',
    (packet, cb) => {
      cb();
      const [, , thing, , jobId] = packet.topic.split('/') as string[];
      const queue = queues.get(thing as string) ?? [];
      const now = Math.floor(Date.now() / 1000);
      let body: { clientToken?: unknown; expectedVersion?: number; status?: string } = {};
      try {
        body = JSON.parse(packet.payload.toString()) as typeof body;
      } catch {
        body = {};
      }
      const i = queue.findIndex((e) => e.jobId === jobId);
      const current = queue[i];
      if (
        current === undefined ||
        (body.expectedVersion !== undefined && body.expectedVersion !== current.versionNumber)
      ) {
        send(`${packet.topic}/rejected`, {
          code: current === undefined ? 'ResourceNotFound' : 'VersionMismatch',
          message: 'rejected',
          timestamp: now,
          clientToken: body.clientToken,
        });
        return;
      }
      queue.splice(i, 1);
      send(`${packet.topic}/accepted`, {
        clientToken: body.clientToken,
        timestamp: now,
        executionState: { status: body.status ?? 'SUCCEEDED', versionNumber: current.versionNumber + 1 },
      });
      const next = queue[0];
      send(
        `$aws/things/${thing}/jobs/notify-next`,
        next ? { timestamp: now, execution: next } : { timestamp: now },
      );
    },
    () => {},
  );
  const server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
  const port = await listen(server, host);
  close = async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  };
  return port;
}

/** A Db whose every query returns no rows at once: the router's handlers run, the database never does. */
function emptyDb(): Db {
  const q: Queryable = { query: async <R>() => [] as R[], exec: async () => {} };
  return { kind: 'postgres', ...q, transaction: (fn) => fn(q), close: async () => {} };
}

async function startFleetJobsRouter(host: string): Promise<number> {
  const log = pino({ level: 'silent' });
  const deps: ServiceDeps = {
    db: emptyDb(),
    clock: () => new Date(),
    log,
    arn: { region: 'local', accountId: '000000000000' },
    topics: createTopicScheme(),
    outboxWritten: () => {},
  };
  const router = createDeviceRouter(deps);
  const broker = createBroker({
    host,
    port: 0,
    log,
    hooks: {
      inspectPublish: (_client, topic) => router.inspect(topic).action,
      answer: (_client, topic, payload) => router.handle(topic, payload),
      isPrivateTopic: (topic) => router.isReplyTopic(topic),
    },
  });
  const addresses = await broker.start();
  close = () => broker.close();
  return Number(new URL(addresses.mqtt).port);
}

async function startFleetJobs(args: StartArgs): Promise<number> {
  if (args.url === undefined || args.schema === undefined) throw new Error('fleetjobs needs url and schema');
  const db = createPostgresDb({
    url: args.url,
    schema: args.schema,
    max: args.poolMax ?? 10,
    applicationName: benchApplicationName(process.pid),
  });
  const config = loadConfig({
    HTTP_PORT: '0',
    MQTT_PORT: '0',
    MQTT_HOST: args.host,
    AUTH_MODE: 'off',
    LOG_LEVEL: 'silent',
    ...(args.redisUrl === undefined ? {} : { REDIS_URL: args.redisUrl, DATABASE_URL: args.url }),
  });
  clockBehindMs = args.clockBehindMs ?? 0;
  const fj = await createFleetJobs({
    config,
    db,
    logger: pino({ level: 'silent' }),
    clock: () => new Date(Date.now() - clockBehindMs),
  });
  const addresses = await fj.start();
  app = fj;
  close = async () => {
    await fj.close();
    await db.close();
  };
  return Number(new URL(addresses.mqtt).port);
}

serve(
  {
    async start(args: StartArgs) {
      const port =
        args.kind === 'aedes-echo'
          ? await startAedesEcho(args.host)
          : args.kind === 'fleetjobs-router'
            ? await startFleetJobsRouter(args.host)
            : args.kind === 'aedes-jobs'
              ? await startAedesJobs(args.host, args.memoryFleet ?? { thingNames: [], jobs: 0 })
              : await startFleetJobs(args);
      return {
        host: args.host,
        port,
        ...(args.kind === 'fleetjobs' ? { applicationName: benchApplicationName(process.pid) } : {}),
      };
    },
    /** Stops the server and its pool (so PostgreSQL's statistics are flushed) but keeps the process. */
    async stop() {
      await close?.();
      close = undefined;
      app = undefined;
      plainAedes = undefined;
    },
    /** S4: CreateJob through the service, timed from call to commit. */
    async createJob(args: { jobId: string; group: string }) {
      if (!app) throw new Error('createJob needs the fleetjobs server');
      const t0 = performance.now();
      await createJob(app.deps, {
        jobId: args.jobId,
        targets: [`thinggroup/${args.group}`],
        document: JSON.stringify({ operation: 'bench-fanout' }),
      });
      return { ms: performance.now() - t0 };
    },
    /** S4 baseline: one QoS 1 publish per thing through plain Aedes, at most `window` in flight. */
    async publishLoop(args: { topics: string[]; payload: string; window: number }) {
      const aedes = plainAedes;
      if (!aedes) throw new Error('publishLoop needs the plain Aedes server');
      const payload = Buffer.from(args.payload);
      const t0 = performance.now();
      let next = 0;
      const lane = async () => {
        while (next < args.topics.length) {
          const topic = args.topics[next++] as string;
          await new Promise<void>((resolve, reject) =>
            aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) =>
              err ? reject(err) : resolve(),
            ),
          );
        }
      };
      await Promise.all(Array.from({ length: args.window }, lane));
      return { ms: performance.now() - t0 };
    },
    /** S6: moves the service clock; the running timeout worker then finds what became overdue. */
    setClockBehind(args: { ms: number }) {
      clockBehindMs = args.ms;
      return null;
    },
    /** S8: MQTT clients connected to this node. */
    sessions() {
      if (!app || !('aedes' in app.broker)) throw new Error('sessions needs the embedded fleetjobs broker');
      return (app.broker as EmbeddedBroker).aedes.connectedClients;
    },
    /** The device batcher's totals so far (GET /metrics' batch histograms): batches, writes, seconds. */
    async batchStats() {
      const registry = app?.deps.metrics?.registry;
      if (!registry) return { count: 0, writes: 0, seconds: 0 };
      const metrics = await registry.getMetricsAsJSON();
      const value = (name: string, suffix: string) =>
        metrics
          .find((m) => m.name === name)
          ?.values.find((v) => (v as { metricName?: string }).metricName === name + suffix)?.value ?? 0;
      return {
        count: value('fleetjobs_device_batch_writes', '_count'),
        writes: value('fleetjobs_device_batch_writes', '_sum'),
        seconds: value('fleetjobs_device_batch_transaction_seconds', '_sum'),
      };
    },
    meterStart: () => meter.start(),
    meterStop: () => meter.stop(),
  },
  async () => {
    await close?.();
  },
);
