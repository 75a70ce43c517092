import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ConfigError, type Config } from './config.js';
import { createPgliteDb, createPostgresDb, type Db } from './store/db.js';
import { migrate } from './store/migrate.js';
import { createTopicScheme } from './protocol/topics.js';
import { buildApp } from './http/app.js';
import type { SigV4Secrets } from './http/device-plane/auth.js';
import type { ServiceDeps } from './service/deps.js';
import { thingSigningSecrets } from './service/credentials.js';
import { LIMITS } from './protocol/limits.js';
import { createMetrics } from './service/metrics.js';
import {
  createBroker,
  readPem,
  type Broker,
  type BrokerHooks,
  type EmbeddedBroker,
} from '../broker/index.js';
import type { ClusterBackend } from '../broker/cluster.js';
import { createCatchUp } from './device/catch-up.js';
import { createSessionLog } from '../broker/session-log.js';
import { createDeviceRouter, type RateLimit } from './device/router.js';
import { createOutboxDispatcher, type OutboxDispatcher } from './workers/outbox-dispatcher.js';
import { createWorkers, type Workers, type WorkersOptions } from './workers/index.js';
import { saveDeploymentSettings } from './store/events.js';
import { databaseReachable, preflight, readableFile, tcpReachable } from './preflight.js';
import { createSecurity, type Security, type SecurityOptions } from './security.js';

export interface FleetJobsOptions {
  config: Config;
  /** A database to use instead of the one the config names (tests pass one per file). */
  db?: Db;
  logger?: Logger;
  clock?: () => Date;
  /** Per-thing device request rate (RequestThrottled beyond it). */
  deviceRateLimit?: RateLimit;
  /** Device identity hooks (per-thing secrets, topic ACLs); see broker/index.ts. */
  brokerHooks?: Pick<BrokerHooks, 'authenticate' | 'authorizeSubscribe'>;
  /** Master key and first-admin-key callback; see src/security.ts. */
  security?: SecurityOptions;
  /** Worker ticks, batch sizes and event retention; see src/workers/index.ts. */
  workers?: WorkersOptions;
}

export interface Addresses {
  http: string;
  /** The device HTTPS data plane, when DEVICE_HTTP_PORT is set. */
  deviceHttp?: string;
  /** Embedded broker listeners (empty in external-broker mode). */
  mqtt: string;
  mqtts?: string;
  ws?: string;
}

export interface FleetJobs {
  start(): Promise<Addresses>;
  close(): Promise<void>;
  readonly addresses: Addresses;
  readonly deps: ServiceDeps;
  readonly http: FastifyInstance;
  /** The embedded broker, or the privileged client of the external one (MQTT_URL). */
  readonly broker: Broker;
  readonly dispatcher: OutboxDispatcher;
  /** Timers, retries, rollout and the events sequencer; tests drive them with runOnce(now). */
  readonly workers: Workers;
}

async function openDb(config: Config, log: Logger): Promise<Db> {
  if (config.databaseUrl) return createPostgresDb({ url: config.databaseUrl });
  await mkdir(config.dataDir, { recursive: true });
  log.info({ dataDir: config.dataDir }, 'using embedded PGlite (set DATABASE_URL for PostgreSQL)');
  return createPgliteDb({ dataDir: `${config.dataDir}/pglite` });
}

/** Cluster mode, after the preflight checks (REDIS_URL answers): Redis connected before anything is created. */
async function openCluster(config: Config, db: Db, log: Logger): Promise<ClusterBackend | undefined> {
  if (config.redisUrl === undefined || config.mqttUrl !== undefined) return undefined;
  if (db.kind !== 'postgres') {
    throw new ConfigError(
      'REDIS_URL (cluster mode) needs PostgreSQL; the embedded PGlite belongs to one process',
    );
  }
  // Imported only here: a single node starts without loading the Redis clients.
  const { connectCluster, RedisUnreachableError } = await import('../broker/cluster.js');
  try {
    const cluster = await connectCluster(config.redisUrl, log);
    log.info('cluster mode: MQTT sessions and fan-out shared through Redis');
    return cluster;
  } catch (err) {
    if (err instanceof RedisUnreachableError) throw new ConfigError(err.message);
    throw err;
  }
}

function withoutCredentials(raw: string): string {
  const u = new URL(raw);
  u.username = '';
  u.password = '';
  return u.toString();
}

function url(scheme: string, address: AddressInfo | string | null): string {
  if (address === null) return '';
  if (typeof address === 'string') return address;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** What the device data plane checks SigV4 signatures with; none without a master key. */
function sigV4Secrets(deps: ServiceDeps, security: Security): SigV4Secrets | undefined {
  const { masterKey, operatorKeys } = security;
  if (masterKey === undefined || operatorKeys === undefined) return undefined;
  return {
    thing: (thingName) => thingSigningSecrets(deps, masterKey, thingName),
    operator: (accessKeyId) => operatorKeys.secretFor(accessKeyId),
    clock: deps.clock,
    maxClockSkewSeconds: LIMITS.SIGV4_MAX_CLOCK_SKEW_SECONDS,
  };
}

/** The whole server in-process: `fleetjobs serve` is a thin shell over it, tests run it on port 0. */
export async function createFleetJobs(options: FleetJobsOptions): Promise<FleetJobs> {
  const { config } = options;
  const log = options.logger ?? pino({ level: config.logLevel });
  const ownDb = options.db === undefined;
  const db = options.db ?? (await openDb(config, log));
  try {
    // Before anything is created (master key, migrations, listeners, the first admin key).
    await preflight([
      ...(ownDb ? [databaseReachable(config.databaseUrl, db)] : []),
      readableFile('TLS_CERT', config.tlsCert),
      readableFile('TLS_KEY', config.tlsKey),
      readableFile('TLS_CA', config.tlsCa),
      tcpReachable(
        'MQTT_URL',
        config.mqttUrl,
        /^(mqtts|ssl|wss):/.test(config.mqttUrl ?? '') ? 8883 : 1883,
        'start the broker or fix MQTT_URL (unset it to run the embedded broker)',
      ),
      tcpReachable(
        'REDIS_URL',
        config.mqttUrl === undefined ? config.redisUrl : undefined,
        6379,
        'start Redis there, fix REDIS_URL, or unset it to run a single node',
      ),
    ]);
  } catch (err) {
    if (ownDb) await db.close();
    throw err;
  }
  let cluster: ClusterBackend | undefined;
  try {
    cluster = await openCluster(config, db, log);
  } catch (err) {
    if (ownDb) await db.close();
    throw err;
  }
  let ready = false;
  const deps: ServiceDeps = {
    db,
    clock: options.clock ?? (() => new Date()),
    log,
    arn: { region: config.awsRegion, accountId: config.awsAccountId },
    topics: createTopicScheme(config.jobsTopicRoot),
    outboxWritten: () => dispatcher.kick(),
    metrics: createMetrics(),
  };
  const security = await createSecurity(config, deps, options.security ?? {});
  const deviceRateLimit = options.deviceRateLimit ?? config.deviceRateLimit;
  const router = createDeviceRouter(deps, deviceRateLimit ? { rateLimit: deviceRateLimit } : {});
  const catchUp = createCatchUp(deps);
  // Device identity (mTLS CN or thing name + secret) and the topic ACL; hooks given by a caller take precedence.
  const identityHooks = { ...security.brokerHooks(), ...options.brokerHooks };
  const sessionLog = createSessionLog(log);
  const hooks: BrokerHooks = {
    ...identityHooks,
    ...(identityHooks.authenticate
      ? { authenticate: sessionLog.authenticate(identityHooks.authenticate) }
      : {}),
    inspectPublish: (client, topic) =>
      security.canPublish(client.identity, topic) ? router.inspect(topic).action : 'refuse',
    answer: (_client, topic, payload) => router.handle(topic, payload),
    isPrivateTopic: (topic) => router.isReplyTopic(topic),
    catchUp: (client, filter) => catchUp.messages(client.identity, client.id, filter),
  };
  // Each optional part's modules (mqtt.js, the device data plane) are imported only when its setting is given.
  const broker: Broker = config.mqttUrl
    ? (await import('../broker/external.js')).createExternalBroker({
        url: config.mqttUrl,
        filter: deps.topics.wildcard(),
        router,
        log,
        // A reply-shaped topic: every instance ignores it, and the random level makes it this instance's own.
        probeTopic: `${deps.topics.root('fleetjobs-probe')}/probe-${randomBytes(6).toString('hex')}/accepted`,
        singleInstance: db.kind === 'pglite',
      })
    : createBroker({
        host: config.mqttHost,
        port: config.mqttPort,
        tls:
          config.mqttsPort === undefined
            ? undefined
            : {
                port: config.mqttsPort,
                cert: readPem(config.tlsCert as string),
                key: readPem(config.tlsKey as string),
                ca: config.tlsCa === undefined ? undefined : readPem(config.tlsCa),
              },
        wsPort: config.mqttWsPort,
        hooks,
        log,
        cluster,
      });
  if ('aedes' in broker) sessionLog.attach((broker as EmbeddedBroker).aedes);
  const dispatcher = createOutboxDispatcher({
    db,
    clock: deps.clock,
    log,
    topics: deps.topics,
    publish: (topic, payload, qos) => broker.publish(topic, payload, qos),
  });
  const workers = createWorkers(deps, options.workers);
  const http = await buildApp(
    {
      ...deps,
      isReady: () => ready,
      unreadyReason: () =>
        broker.connected?.() === false ? 'the MQTT broker at MQTT_URL is not reachable' : undefined,
      deviceEndpoints: () => ({
        mqtt: config.mqttUrl ?? addresses.mqtts ?? addresses.mqtt,
        deviceHttp: addresses.deviceHttp,
      }),
      auth: {
        mode: config.authMode,
        operatorKeys: security.operatorKeys,
        masterKey: security.masterKey,
        rateLimit: config.operatorRateLimit,
        // A revoked or rotated-away secret also ends the sessions it opened (devices with a valid one reconnect).
        onDeviceCredentialsRevoked: (thingName) => {
          if ('disconnectIdentity' in broker) (broker as EmbeddedBroker).disconnectIdentity(thingName);
        },
      },
    },
    { logger: log },
  );
  // [protocol §5] Device listeners bind to MQTT_HOST; with TLS_CERT and TLS_KEY the data plane speaks HTTPS.
  const deviceTls =
    config.tlsCert === undefined || config.tlsKey === undefined
      ? undefined
      : {
          cert: readPem(config.tlsCert),
          key: readPem(config.tlsKey),
          ca: config.tlsCa === undefined ? undefined : readPem(config.tlsCa),
        };
  const deviceHttp =
    config.deviceHttpPort === undefined
      ? undefined
      : await (
          await import('./http/device-plane/app.js')
        ).buildDevicePlaneApp(
          {
            ...deps,
            authOff: config.authMode === 'off',
            rateLimit: deviceRateLimit,
            authenticate: (await import('./http/device-plane/auth.js')).createDevicePlaneAuth(
              (thingName, secret) => security.devices.verify(thingName, secret),
              sigV4Secrets(deps, security),
            ),
          },
          { logger: log, https: deviceTls },
        );
  const addresses: Addresses = { http: '', mqtt: '' };

  // Safe on a partly started server: every part's close tolerates a part that never started.
  const closeAll = async (): Promise<void> => {
    ready = false;
    await workers.close();
    await dispatcher.close();
    await broker.close();
    await deviceHttp?.close();
    await http.close();
    if (ownDb) await db.close();
  };

  return {
    deps,
    http,
    broker,
    dispatcher,
    workers,
    addresses,
    async start() {
      try {
        const result = await migrate(db);
        if (result.applied.length > 0) log.info({ applied: result.applied }, 'migrations applied');
        // The master key check hashes (scrypt, off the main thread): it runs while the listeners bind.
        const securityStarted = security.start();
        securityStarted.catch(() => undefined);
        // Before any listener: every event written from now on carries this deployment's thingArn.
        await saveDeploymentSettings(db, deps.arn);
        try {
          await http.listen({ host: config.httpHost, port: config.httpPort });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
            throw new Error(`HTTP_PORT ${config.httpPort} is in use; set HTTP_PORT`, { cause: err });
          }
          throw err;
        }
        addresses.http = url('http', http.server.address());
        Object.assign(addresses, await broker.start());
        if (deviceHttp !== undefined) {
          try {
            await deviceHttp.listen({ host: config.mqttHost, port: config.deviceHttpPort });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
              throw new Error(`DEVICE_HTTP_PORT ${config.deviceHttpPort} is in use; set DEVICE_HTTP_PORT`, {
                cause: err,
              });
            }
            throw err;
          }
          addresses.deviceHttp = url(deviceTls ? 'https' : 'http', deviceHttp.server.address());
        }
        await securityStarted;
        dispatcher.start();
        workers.start();
        ready = true;
        // Only now, with every listener bound and the store answering: a start that fails leaves no key behind.
        await security.createFirstAdminKey();
        // The external broker's address without its credentials (an embedded broker's is in addresses).
        const external = config.mqttUrl === undefined ? {} : { mqttUrl: withoutCredentials(config.mqttUrl) };
        log.info({ addresses, ...external }, 'fleetjobs started');
        return addresses;
      } catch (err) {
        // A listener that failed must not leave the others (and the database) holding the process open.
        await closeAll();
        throw err;
      }
    },
    close: closeAll,
  };
}
