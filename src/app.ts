import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { createPgliteDb, createPostgresDb, type Db } from './store/db.js';
import { migrate } from './store/migrate.js';
import { createTopicScheme } from './protocol/topics.js';
import { buildApp } from './http/app.js';
import type { ServiceDeps } from './service/deps.js';
import { createMetrics } from './service/metrics.js';

export interface FleetJobsOptions {
  config: Config;
  /** A database to use instead of the one the config names (tests pass one per file). */
  db?: Db;
  logger?: Logger;
  clock?: () => Date;
}

export interface Addresses {
  http: string;
}

export interface FleetJobs {
  start(): Promise<Addresses>;
  close(): Promise<void>;
  readonly addresses: Addresses;
  readonly deps: ServiceDeps;
  readonly http: FastifyInstance;
}

async function openDb(config: Config, log: Logger): Promise<Db> {
  if (config.databaseUrl) return createPostgresDb({ url: config.databaseUrl });
  await mkdir(config.dataDir, { recursive: true });
  log.info({ dataDir: config.dataDir }, 'using embedded PGlite (set DATABASE_URL for PostgreSQL)');
  return createPgliteDb({ dataDir: `${config.dataDir}/pglite` });
}

function url(scheme: string, address: AddressInfo | string | null): string {
  if (address === null) return '';
  if (typeof address === 'string') return address;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** The whole server in-process: `fleetjobs serve` is a thin shell over it, tests run it on port 0. */
export async function createFleetJobs(options: FleetJobsOptions): Promise<FleetJobs> {
  const { config } = options;
  const log = options.logger ?? pino({ level: config.logLevel });
  const ownDb = options.db === undefined;
  const db = options.db ?? (await openDb(config, log));
  let ready = false;
  const deps: ServiceDeps = {
    db,
    clock: options.clock ?? (() => new Date()),
    log,
    arn: { region: config.awsRegion, accountId: config.awsAccountId },
    topics: createTopicScheme(config.jobsTopicRoot),
    outboxWritten: () => {},
    metrics: createMetrics(),
  };
  const http = await buildApp({ ...deps, isReady: () => ready }, { logger: log });
  const addresses: Addresses = { http: '' };

  return {
    deps,
    http,
    addresses,
    async start() {
      const result = await migrate(db);
      if (result.applied.length > 0) log.info({ applied: result.applied }, 'migrations applied');
      try {
        await http.listen({ host: config.httpHost, port: config.httpPort });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new Error(`HTTP_PORT ${config.httpPort} is in use; set HTTP_PORT`, { cause: err });
        }
        throw err;
      }
      addresses.http = url('http', http.server.address());
      ready = true;
      log.info({ addresses }, 'fleetjobs started');
      return addresses;
    },
    async close() {
      ready = false;
      await http.close();
      if (ownDb) await db.close();
    },
  };
}
