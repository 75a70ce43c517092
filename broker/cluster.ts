/**
 * Cluster mode (REDIS_URL): every node's Aedes shares one Redis. mqemitter-redis carries each publish to the
 * other nodes (pub/sub on the MQTT topic as the channel name), and aedes-persistence-redis keeps sessions,
 * subscriptions, offline QoS 1 queues and retained messages there, so a device may reconnect to any node with
 * clean=false and find its session. Both are the moscajs packages made for Aedes; their majors follow aedes 1.2's
 * own aedes-persistence (11) and mqemitter (7).
 *
 * Redis pub/sub channels are global to a Redis server (the db index in the URL separates keys, not channels):
 * two clusters on one Redis must not share thing names.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);
// The package's main export: its async persistence behind the callback-or-promise face aedes 1.2 drives (the
// retained-message streams among it).
const aedesPersistenceRedis = require('aedes-persistence-redis') as (opts: { conn: Redis }) => Persistence;

interface Persistence {
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<unknown>;
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void>;
}

/**
 * aedes 1.2 stores a SUBSCRIBE of n filters by calling addSubscriptions n times at once, each with all n, and
 * aedes-persistence-redis then waits for its own broadcast of each, keyed by client and first filter: the
 * second wait replaces the first, and the SUBSCRIBE (never acknowledged) hangs the client. Identical calls
 * for a client share one store; other calls of one client run one after another.
 */
function oneSubscribeAtATime(persistence: Persistence): void {
  const add = persistence.addSubscriptions.bind(persistence);
  const last = new Map<string, { subs: string; done: Promise<unknown> }>();
  persistence.addSubscriptions = (client, subs) => {
    const key = subs.map((s) => `${s.topic}\u0000${s.qos}`).join('\n');
    const previous = last.get(client.id);
    if (previous?.subs === key) return previous.done;
    const done = (previous?.done ?? Promise.resolve()).catch(() => undefined).then(() => add(client, subs));
    const entry = { subs: key, done };
    last.set(client.id, entry);
    const forget = () => {
      if (last.get(client.id) === entry) last.delete(client.id);
    };
    done.then(forget, forget);
    return done;
  };
}

/**
 * Aedes stores a QoS 1 publish for its clean=false subscribers (one write, then one per subscriber) before it sends
 * it to Redis, so a publish with more such subscribers finished after the next one and reached every node behind
 * it. Aedes delivers one broker's messages to a client only in the order it numbered them (brokerCounter), so a
 * client that got both lost the first (a device subscribed to notify and notify-next, while another session
 * watched notify). Here each store finishes no earlier than those called before it, so publishes leave in the order
 * they were made; the Redis commands are still pipelined.
 */
function enqueuesInOrder(persistence: Persistence): void {
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence);
  let previous: Promise<void> = Promise.resolve();
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    const after = previous.catch(() => undefined);
    const done = enqueue(subs, packet).then(
      () => after,
      (err: unknown) =>
        after.then(() => {
          throw err;
        }),
    );
    previous = done;
    return done;
  };
}

export interface ClusterBackend {
  /** Aedes' `mq` option. */
  readonly mq: unknown;
  /** Aedes' `persistence` option. */
  readonly persistence: unknown;
  /** After Aedes closed (which closes `mq`): ends the persistence's Redis connection. */
  close(): Promise<void>;
}

export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/** Redis names in logs and errors without a password. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'REDIS_URL';
  }
}

async function connect(url: string, log: Logger, role: string): Promise<Redis> {
  const conn = new Redis(url, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: null });
  // The failure of the first connect is the one line thrown below; afterwards errors are logged.
  const quiet = () => {};
  conn.on('error', quiet);
  try {
    // One try at start: a Redis that is not there is a configuration problem, not something to wait for.
    conn.options.retryStrategy = () => null;
    await conn.connect();
  } catch (err) {
    conn.disconnect();
    throw new RedisUnreachableError(
      `REDIS_URL ${redactRedisUrl(url)} is unreachable (${(err as Error).message}); start Redis there, fix REDIS_URL, or unset it to run a single node`,
      { cause: err },
    );
  }
  // Once running, an outage is waited out: ioredis reconnects and replays what was queued.
  conn.options.retryStrategy = (times) => Math.min(times * 200, 2_000);
  conn.off('error', quiet);
  conn.on('error', (err: Error) => log.warn({ err: err.message, role }, 'Redis connection error'));
  // Some commands are sent without anyone awaiting the reply (mqemitter-redis's QUIT at close, the persistence's
  // LREM of a will): when the connection closes under one, its "Connection is closed" must not become an
  // unhandled rejection. A caller that awaits still gets the error.
  const send = conn.sendCommand.bind(conn);
  conn.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    const reply = send(...args) as Promise<unknown>;
    reply.catch((err: Error) =>
      log.debug({ err: err.message, role, command: args[0].name }, 'Redis command failed'),
    );
    return reply;
  }) as Redis['sendCommand'];
  return conn;
}

export async function connectCluster(url: string, log: Logger): Promise<ClusterBackend> {
  const settled = await Promise.allSettled(
    (['publish', 'subscribe', 'persistence'] as const).map((role) => connect(url, log, role)),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    for (const r of settled) if (r.status === 'fulfilled') r.value.disconnect();
    throw failed.reason;
  }
  const [pubConn, subConn, store] = settled.map((r) => (r as PromiseFulfilledResult<Redis>).value) as [
    Redis,
    Redis,
    Redis,
  ];
  const mq = MQEmitterRedis({ pubConn, subConn });
  // mqemitter-redis re-emits a failed publish on `state`; without a listener that would throw.
  (mq as unknown as { state: EventEmitter }).state.on('error', (err: Error) =>
    log.warn({ err: err.message }, 'Redis publish failed'),
  );
  const persistence = aedesPersistenceRedis({ conn: store });
  oneSubscribeAtATime(persistence);
  enqueuesInOrder(persistence);
  return {
    mq,
    persistence,
    async close() {
      // QUIT rather than the persistence's destroy (a disconnect): what closing clients still wrote is answered
      // first instead of failing with "Connection is closed".
      await store.quit().catch(() => undefined);
    },
  };
}
