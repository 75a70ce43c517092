import { AbstractStartedContainer, GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { connectTestDevice, type TestDevice, type TestDeviceOptions } from './device.js';
import type { IotClientConfig } from './index.js';

/**
 * [protocol §5] fleetjobs in a container for test suites, shaped like the official @testcontainers/* modules:
 * `await new FleetJobsContainer('fleetjobs:latest').start()`. The image is the repository's Dockerfile: auth on,
 * every listener on 0.0.0.0, PGlite in /data unless a DATABASE_URL is given. Needs the optional peer dependency
 * `testcontainers` and a Docker-compatible engine; see docs/testing.md.
 */
export const FLEETJOBS_MQTT_PORT = 1883;
export const FLEETJOBS_HTTP_PORT = 8080;

/** The first admin operator key, printed once by the first serve on an empty store. */
export interface AdminKey {
  accessKeyId: string;
  secretAccessKey: string;
  /** `Authorization: Bearer <token>` */
  token: string;
}

const TOKEN_LINE = /export FLEETJOBS_TOKEN=(\S+)/;
const SIGV4_LINE = /AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)/;

export class FleetJobsContainer extends GenericContainer {
  private readonly adminKey: Promise<AdminKey>;

  constructor(image: string) {
    super(image);
    let found: (key: AdminKey) => void = () => {};
    this.adminKey = new Promise((resolve) => (found = resolve));
    const seen: Partial<AdminKey> = {};
    this.withExposedPorts(FLEETJOBS_MQTT_PORT, FLEETJOBS_HTTP_PORT)
      .withEnvironment({ LOG_LEVEL: 'warn' })
      // /readyz: /healthz answers as soon as HTTP listens, a moment before the MQTT listener is up.
      .withWaitStrategy(Wait.forHttp('/readyz', FLEETJOBS_HTTP_PORT).forStatusCode(200))
      .withStartupTimeout(60_000)
      .withLogConsumer((stream) => {
        stream.on('data', (chunk: Buffer | string) => {
          for (const line of chunk.toString().split('\n')) {
            const token = TOKEN_LINE.exec(line);
            if (token) seen.token = token[1];
            const sigv4 = SIGV4_LINE.exec(line);
            if (sigv4) [, seen.accessKeyId, seen.secretAccessKey] = sigv4;
          }
          if (seen.token && seen.accessKeyId && seen.secretAccessKey) found(seen as AdminKey);
        });
      });
  }

  /** PostgreSQL instead of the embedded PGlite; the admin key is known only when that database is empty. */
  withDatabaseUrl(url: string): this {
    return this.withEnvironment({ DATABASE_URL: url });
  }

  /** FLEETJOBS_MASTER_KEY (32+ bytes, hex or base64); default: generated into /data. */
  withMasterKey(key: string): this {
    return this.withEnvironment({ FLEETJOBS_MASTER_KEY: key });
  }

  /** LOG_LEVEL of the server (default `warn`); see the logs with `container.logs()`. */
  withLogLevel(level: string): this {
    return this.withEnvironment({ LOG_LEVEL: level });
  }

  override async start(): Promise<StartedFleetJobsContainer> {
    const started = await super.start();
    // Printed before the HTTP listener opens, so it is in the log by the time /readyz answers.
    const adminKey = await Promise.race([
      this.adminKey,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000).unref()),
    ]);
    return new StartedFleetJobsContainer(started, adminKey);
  }
}

export class StartedFleetJobsContainer extends AbstractStartedContainer {
  constructor(
    startedTestContainer: StartedTestContainer,
    private readonly adminKey: AdminKey | undefined,
  ) {
    super(startedTestContainer);
  }

  getMqttPort(): number {
    return this.getMappedPort(FLEETJOBS_MQTT_PORT);
  }

  getHttpPort(): number {
    return this.getMappedPort(FLEETJOBS_HTTP_PORT);
  }

  /** mqtt://host:port for devices (username = thing name, password = a secret from createDeviceSecret). */
  getMqttUrl(): string {
    return `mqtt://${this.getHost()}:${this.getMqttPort()}`;
  }

  /** http://host:port of the operator API. */
  getHttpUrl(): string {
    return `http://${this.getHost()}:${this.getHttpPort()}`;
  }

  getAdminKey(): AdminKey {
    if (this.adminKey === undefined) {
      throw new Error(
        'fleetjobs printed no admin key: it creates one only on an empty store; start it on a fresh DATABASE_URL',
      );
    }
    return this.adminKey;
  }

  /** `new IoTClient(container.getIotClientConfig())`: signs with the admin key (SigV4). */
  getIotClientConfig(): IotClientConfig {
    const key = this.getAdminKey();
    return {
      endpoint: this.getHttpUrl(),
      region: 'local',
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    };
  }

  /** Creates a device secret for an existing thing (POST /things/{thingName}/credentials). */
  async createDeviceSecret(thingName: string): Promise<string> {
    const res = await fetch(`${this.getHttpUrl()}/things/${encodeURIComponent(thingName)}/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.getAdminKey().token}` },
    });
    const body = (await res.json()) as { secret?: string; message?: string };
    if (!res.ok || body.secret === undefined) {
      throw new Error(`creating a secret for ${thingName} failed: ${res.status} ${body.message ?? ''}`);
    }
    return body.secret;
  }

  /** A new secret for the thing, then a device connected with it and subscribed to its jobs topics. */
  async connectDevice(
    thingName: string,
    options: Partial<Omit<TestDeviceOptions, 'url' | 'thingName' | 'password'>> = {},
  ): Promise<TestDevice> {
    const password = await this.createDeviceSecret(thingName);
    return connectTestDevice({ ...options, url: this.getMqttUrl(), thingName, password });
  }
}
