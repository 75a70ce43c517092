import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFleetJobs, type Addresses, type FleetJobs } from '../app.js';
import { loadConfig, type Config } from '../config.js';
import { connectTestDevice, type TestDevice, type TestDeviceOptions } from './device.js';

export {
  connectTestDevice,
  type DeviceMessage,
  type DeviceReply,
  type TestDevice,
  type TestDeviceOptions,
} from './device.js';

/**
 * The in-process test double: a whole fleetjobs server (embedded broker, operator API, workers) on free loopback
 * ports with AUTH_MODE=off, in the test's own process. No Docker needed; see docs/testing.md.
 */
export interface StartFleetJobsOptions {
  /** PostgreSQL to use (its tables are created on start); default: PGlite in a temp dir removed by close(). */
  databaseUrl?: string;
  /** Any other setting by its env var name (docs/configuration.md), e.g. `{ JOBS_TOPIC_ROOT: 'fleet/{thingName}/jobs' }`. */
  settings?: Record<string, string>;
  /** Server log level (default `silent`). */
  logLevel?: string;
  /** The server's clock (timestamps, timeouts); `app.workers.runOnce(now)` runs the timers for a chosen time. */
  clock?: () => Date;
}

/** What `@aws-sdk/client-iot` needs: `new IoTClient(fleet.iot)`. Auth is off, so the credentials are dummies. */
export interface IotClientConfig {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface RunningFleetJobs {
  /** mqtt://127.0.0.1:port of the embedded broker. */
  readonly mqttUrl: string;
  /** http://127.0.0.1:port of the operator API (REST, /healthz, OpenAPI at /docs). */
  readonly httpUrl: string;
  readonly iot: IotClientConfig;
  /** The server itself (deps, workers.runOnce(now), broker...) for tests that need more. */
  readonly app: FleetJobs;
  /** Connects an MQTT device for `thingName`, subscribed to its jobs topics; closed by close(). */
  device(
    thingName: string,
    options?: Partial<Omit<TestDeviceOptions, 'url' | 'thingName'>>,
  ): Promise<TestDevice>;
  /** Closes the devices, the server and the temp dir. */
  close(): Promise<void>;
}

export async function startFleetJobs(options: StartFleetJobsOptions = {}): Promise<RunningFleetJobs> {
  const dataDir = options.databaseUrl === undefined ? await mkdtemp(join(tmpdir(), 'fleetjobs-')) : undefined;
  const removeDataDir = async () => {
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  };
  let config: Config;
  let app: FleetJobs;
  let addresses: Addresses;
  try {
    config = loadConfig({
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      AUTH_MODE: 'off',
      LOG_LEVEL: options.logLevel ?? 'silent',
      ...(dataDir === undefined ? { DATABASE_URL: options.databaseUrl } : { FLEETJOBS_DATA_DIR: dataDir }),
      ...options.settings,
    });
    app = await createFleetJobs({
      config,
      logger: pino({ level: config.logLevel }),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    // A start that fails has closed what it opened.
    addresses = await app.start();
  } catch (err) {
    await removeDataDir();
    throw err;
  }
  const devices = new Set<TestDevice>();
  return {
    mqttUrl: addresses.mqtt,
    httpUrl: addresses.http,
    iot: {
      endpoint: addresses.http,
      region: config.awsRegion,
      credentials: { accessKeyId: 'AKIDFLEETJOBSTEST', secretAccessKey: 'fleetjobs-test-secret' },
    },
    app,
    async device(thingName, deviceOptions = {}) {
      const device = await connectTestDevice({
        topicRoot: config.jobsTopicRoot,
        ...deviceOptions,
        url: addresses.mqtt,
        thingName,
      });
      devices.add(device);
      return {
        ...device,
        close: async () => {
          devices.delete(device);
          await device.close();
        },
      };
    },
    async close() {
      await Promise.all([...devices].map((d) => d.close()));
      devices.clear();
      await app.close();
      await removeDataDir();
    },
  };
}
