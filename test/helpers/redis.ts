import { Redis } from 'ioredis';

/** The real Redis the cluster tests run against (CI starts it; see .ci/run). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A Redis database of one test file's own (keys are per database; pub/sub channels are not, so a file also
 * uses thing names of its own), flushed when taken and when released.
 */
export async function takeRedisDb(index: number): Promise<{ url: string; release(): Promise<void> }> {
  const url = `${TEST_REDIS_URL}/${index}`;
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

/** Every channel published on the Redis server while it runs (all databases: pub/sub is server-wide). */
export async function spyOnRedisChannels(): Promise<{ channels: string[]; close(): Promise<void> }> {
  const sub = new Redis(TEST_REDIS_URL);
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
