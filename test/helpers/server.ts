import { pino } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Db } from '../../src/store/db.js';

export interface TestServerOptions {
  db: Db;
  config?: Partial<Config>;
  clock?: () => Date;
}

/** A whole fleetjobs in-process on free ports, with auth off and logs silent unless TEST_LOG_LEVEL is set. */
export async function startTestServer(options: TestServerOptions): Promise<FleetJobs> {
  const config: Config = {
    ...loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off', LOG_LEVEL: 'silent' }),
    ...options.config,
  };
  const app = await createFleetJobs({
    config,
    db: options.db,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  await app.start();
  return app;
}
