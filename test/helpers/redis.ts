import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A Redis to use instead of a private one (a database index per file is then taken on it). */
const SHARED_REDIS_URL = process.env.TEST_REDIS_URL;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface TestRedis {
  url: string;
  release(): Promise<void>;
}

/**
 * A Redis of one test file's own: a private `redis-server` on a free loopback port (the real server binary, as
 * CI installs it), stopped on release. Pub/sub channels are server-wide, not per database, and Aedes announces
 * every client connect on them, so two files' clusters on one server would take over each other's sessions.
 * With TEST_REDIS_URL set, a flushed database `index` on that server instead.
 */
export async function takeRedisDb(index: number): Promise<TestRedis> {
  if (SHARED_REDIS_URL !== undefined) {
    const url = `${SHARED_REDIS_URL}/${index}`;
    const admin = new Redis(url, { maxRetriesPerRequest: 1 });
    await admin.flushdb();
    return {
      url,
      async release() {
        await admin.flushdb();
        await admin.quit();
      },
    };
  }
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  const exited = once(child, 'exit');
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    const probe = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
    // Refused until redis-server listens: connect() rejects, and the same error must not be printed as unhandled.
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      await probe.quit();
      break;
    } catch (err) {
      probe.disconnect();
      if (attempt >= 100 || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async release() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Every channel published on a Redis server while it runs (all databases: pub/sub is server-wide). */
export async function spyOnRedisChannels(
  url: string,
): Promise<{ channels: string[]; close(): Promise<void> }> {
  const sub = new Redis(url);
  const channels: string[] = [];
  sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer) => channels.push(channel.toString()));
  await sub.psubscribe('*');
  return {
    channels,
    async close() {
      await sub.quit();
    },
  };
}
