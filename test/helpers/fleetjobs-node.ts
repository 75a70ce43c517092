/**
 * A fleetjobs server in a child process of its own (spawnChild from bench/lib/child.ts), for tests that kill
 * a node with SIGKILL: `start` runs createFleetJobs on PostgreSQL (a test schema) with every listener on port 0
 * and AUTH_MODE=off, in cluster mode when given a Redis URL; it answers with the listeners' URLs.
 */
import { pino } from 'pino';
import { serve } from '../../bench/lib/child.js';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createPostgresDb } from '../../src/store/db.js';

export interface NodeStartArgs {
  url: string;
  schema: string;
  redisUrl?: string;
}

let app: FleetJobs | undefined;
let closeDb: (() => Promise<void>) | undefined;

serve(
  {
    async start(args: NodeStartArgs) {
      const db = createPostgresDb({ url: args.url, schema: args.schema, max: 5 });
      closeDb = () => db.close();
      const config = loadConfig({
        HTTP_PORT: '0',
        MQTT_PORT: '0',
        AUTH_MODE: 'off',
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
        DATABASE_URL: args.url,
        ...(args.redisUrl === undefined ? {} : { REDIS_URL: args.redisUrl }),
      });
      app = await createFleetJobs({ config, db, logger: pino({ level: config.logLevel }) });
      const addresses = await app.start();
      return { http: addresses.http, mqtt: addresses.mqtt };
    },
  },
  async () => {
    await app?.close();
    await closeDb?.();
  },
);
