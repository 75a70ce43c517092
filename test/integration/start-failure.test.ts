import { createServer, connect, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { createFleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('a server that cannot start', () => {
  let t: TestDb;
  const squatter = createServer();
  const free = createServer();
  let busyPort: number;
  let httpPort: number;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    busyPort = await listen(squatter);
    httpPort = await listen(free);
    await new Promise((r) => free.close(r));
  });
  afterAll(async () => {
    await new Promise((r) => squatter.close(r));
    await t.close();
  });

  it('names the busy MQTT port and closes the listeners it had opened', async () => {
    const config = loadConfig({
      HTTP_PORT: String(httpPort),
      MQTT_PORT: String(busyPort),
      AUTH_MODE: 'off',
      LOG_LEVEL: 'silent',
    });
    const app = await createFleetJobs({ config, db: t.db, logger: pino({ level: 'silent' }) });
    await expect(app.start()).rejects.toThrow(`MQTT_PORT ${busyPort} is in use; set MQTT_PORT`);
    expect(await refused(httpPort)).toBe(true);
  });
});
