/**
 * The embedded MQTT broker (Aedes, MQTT 3.1.1): TCP, TLS and WebSocket listeners around one Aedes instance.
 * It knows nothing of jobs; everything it decides about a client is asked of the hooks it is given:
 *
 * - `authenticate(client, username, password)` -> `{ ok, identity? }`: accept or refuse a CONNECT. The
 *   identity (a thing name) is attached to the client; over mTLS `client.certificateCn` is the CN of the
 *   verified client certificate, and the default hook takes it as the identity (any client is accepted).
 * - `inspectPublish(client, topic)` -> `forward` (an ordinary publish), `refuse` (the client is
 *   disconnected, as AWS IoT does on a policy violation, and nothing is delivered), or `answer` (a request:
 *   `answer(client, topic, payload)` is called and its reply is written to that client only).
 * - `authorizeSubscribe(client, topic)` -> boolean (default: allow).
 * - `isPrivateTopic(topic)`: reply topics; the broker never forwards them to subscribers, it only writes a
 *   reply straight to its requester, whether or not the requester subscribed.
 * - `catchUp(client, filter)`: messages a client that asked to keep its session (clean=false) but whose session
 *   was not present at CONNECT (never made, or lost in a crash) may have missed, written to it alone: at CONNACK
 *   (`filter` undefined), and after each SUBACK for the filter it subscribed to.
 *
 * The concerns live apart: listeners.ts (sockets), clients.ts (identity), authorize.ts (topic policy and
 * requests), delivery.ts (how bytes reach a client), cluster.ts (Redis, for several nodes).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { Logger } from 'pino';
import { LIMITS } from '../src/protocol/limits.js';
import { createAuthorizeHooks } from './authorize.js';
import { createClientRegistry } from './clients.js';
import type { ClusterBackend } from './cluster.js';
import { DirectWrites, shapeQos0Deliveries } from './delivery.js';
import { createListeners, type BrokerAddresses, type TlsListenerOptions } from './listeners.js';
import { limitPacketSize } from './packet-limit.js';
import { refuseMqtt5 } from './protocol-version.js';

export { readPem, selectAlpn, type BrokerAddresses, type TlsListenerOptions } from './listeners.js';

export interface BrokerClient {
  readonly id: string;
  /** The thing name the client authenticated as, if any. */
  readonly identity: string | undefined;
  /** CN of the verified client certificate (mTLS listener only). */
  readonly certificateCn: string | undefined;
}

export type PublishDecision = 'forward' | 'refuse' | 'answer';

export interface BrokerReply {
  topic: string;
  payload: Buffer;
}

export interface BrokerHooks {
  authenticate?(
    client: BrokerClient,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<{ ok: boolean; identity?: string | undefined }>;
  authorizeSubscribe?(client: BrokerClient, topic: string): boolean;
  inspectPublish(client: BrokerClient, topic: string): PublishDecision;
  answer(client: BrokerClient, topic: string, payload: Buffer): Promise<BrokerReply | undefined>;
  isPrivateTopic(topic: string): boolean;
  catchUp?(client: BrokerClient, filter: string | undefined): Promise<BrokerReply[]>;
}

export interface BrokerOptions {
  host: string;
  port: number;
  tls?: TlsListenerOptions | undefined;
  wsPort?: number | undefined;
  hooks: BrokerHooks;
  log: Logger;
  /** ms a client may leave writes unflushed before it is disconnected. */
  drainTimeoutMs?: number;
  /** [protocol §8] Largest MQTT packet a client may send; a larger one closes its connection. */
  maxPacketBytes?: number;
  /** Unflushed bytes beyond which QoS 0 messages for a client are dropped (default 1 MiB). */
  maxQos0BacklogBytes?: number;
  /** Cluster mode: Aedes' fan-out and sessions in Redis (cluster.ts), shared with the other nodes. */
  cluster?: ClusterBackend | undefined;
}

/** What the service needs of a broker, embedded or external. */
export interface Broker {
  /** Resolves with the listeners' URLs (none for an external broker). */
  start(): Promise<Partial<BrokerAddresses>>;
  close(): Promise<void>;
  /** Publishes through the broker's fan-out (notifications, events). */
  publish(topic: string, payload: Buffer | string, qos: 0 | 1): Promise<void>;
  /** False while the connection to an external broker is down (/readyz); absent for the embedded one. */
  connected?(): boolean;
}

export interface EmbeddedBroker extends Broker {
  start(): Promise<BrokerAddresses>;
  readonly aedes: Aedes;
  /** Closes every connection authenticated as `identity` (a revoked secret); returns how many. */
  disconnectIdentity(identity: string): number;
}

export function createBroker(options: BrokerOptions): EmbeddedBroker {
  const { hooks, log } = options;
  const clients = createClientRegistry(hooks, log);
  const id = randomUUID();
  // Replies and catch-up, written to one client alone: the only packets on private topics let by.
  const directWrites = new DirectWrites(`${id}-direct`);

  const aedesOptions: AedesOptions = {
    id,
    drainTimeout: options.drainTimeoutMs ?? 10_000,
    preConnect(client, packet, done) {
      const refused = refuseMqtt5(client.conn, packet.protocolVersion ?? 4, () =>
        log.warn(
          { clientId: packet.clientId },
          'MQTT 5 CONNECT refused (reason 0x84): the embedded broker speaks MQTT 3.1.1; connect with MQTT 3.1.1 or run an MQTT 5 broker with MQTT_URL (docs/operations.md)',
        ),
      );
      done(null, !refused);
    },
    authenticate: clients.authenticate,
    ...createAuthorizeHooks(hooks, clients, directWrites, log),
  };
  if (options.cluster !== undefined) {
    aedesOptions.mq = options.cluster.mq;
    aedesOptions.persistence = options.cluster.persistence;
  }
  const aedes = new Aedes(aedesOptions);
  clients.track(aedes);
  aedes.on('clientError', (client, err) =>
    log.debug({ clientId: client.id, err: err.message }, 'client error'),
  );
  aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'connection error'));

  if (hooks.catchUp !== undefined) {
    const catchUp = hooks.catchUp;
    // clean=false clients whose session was not present at CONNACK; what they subscribe to is caught up. A clean
    // session is promised nothing from before it subscribes.
    const fresh = new WeakSet<Client>();
    const send = (client: Client, filter: string | undefined) =>
      catchUp(clients.view(client), filter).then(
        (messages) => {
          if (client.closed) return;
          for (const m of messages) {
            directWrites.write(client, m, 1, (err) =>
              log.debug({ err, clientId: client.id }, 'catch-up not delivered'),
            );
          }
        },
        (err: unknown) => log.error({ err, clientId: client.id }, 'catch-up hook failed'),
      );
    aedes.on('connackSent', (packet, client) => {
      if (packet.sessionPresent === true || client.clean !== false) return;
      fresh.add(client);
      void send(client, undefined);
    });
    aedes.on('subscribe', (subscriptions, client) => {
      if (!fresh.has(client)) return;
      for (const s of subscriptions) if ((s.qos as number) !== 128) void send(client, s.topic);
    });
  }

  const maxPacketBytes = options.maxPacketBytes ?? LIMITS.MAX_MQTT_PACKET_BYTES;
  const maxQos0BacklogBytes = options.maxQos0BacklogBytes ?? 1024 * 1024;
  const listeners = createListeners(options, log, (conn: Duplex, req?: IncomingMessage) => {
    limitPacketSize(conn, maxPacketBytes, (size) =>
      log.warn({ size, limit: maxPacketBytes }, 'MQTT packet over the size limit; connection closed'),
    );
    shapeQos0Deliveries(aedes.handle(conn, req), maxQos0BacklogBytes);
  });

  return {
    aedes,
    disconnectIdentity: (identity) => clients.disconnectIdentity(identity),
    async start() {
      await aedes.listen();
      return listeners.start();
    },
    async close() {
      await listeners.close(() => new Promise<void>((resolve) => aedes.close(() => resolve())));
      await options.cluster?.close();
    },
    publish(topic, payload, qos) {
      return new Promise((resolve, reject) => {
        aedes.publish(
          {
            cmd: 'publish',
            topic,
            payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
            qos,
            retain: false,
            dup: false,
          },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },
  };
}
