import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Db } from '../../src/store/db.js';
import type { WorkersOptions } from '../../src/workers/index.js';
import type { SecurityOptions } from '../../src/security.js';

export interface TestServerOptions {
  db: Db;
  config?: Partial<Config>;
  clock?: () => Date;
  /**
   * Turns authentication on (AUTH_MODE=required): operator keys are derived from `masterKey` (a random one when
   * omitted), and the first admin key created on start is handed to `onAdminKeyCreated`.
   */
  auth?: SecurityOptions;
  /** Worker options; `{ autoStart: false }` leaves time to the test (workers.runOnce(now)). */
  workers?: WorkersOptions;
  /** A logger to capture the server's log lines (default: silent unless TEST_LOG_LEVEL is set). */
  logger?: Logger;
}

/** A whole fleetjobs in-process on free ports, with auth off and logs silent unless TEST_LOG_LEVEL is set. */
export async function startTestServer(options: TestServerOptions): Promise<FleetJobs> {
  const config: Config = {
    ...loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off', LOG_LEVEL: 'silent' }),
    ...(options.auth ? { authMode: 'required' as const } : {}),
    ...options.config,
  };
  const app = await createFleetJobs({
    config,
    db: options.db,
    logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.workers ? { workers: options.workers } : {}),
    ...(options.auth
      ? { security: { masterKey: randomBytes(32), writeAdminKeyFile: false, ...options.auth } }
      : {}),
  });
  await app.start();
  return app;
}
