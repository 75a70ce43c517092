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
 *
 * Requests are taken in `authorizePublish`, not through `broker.subscribe`: a reply published from a
 * subscription handler before its delivery is acknowledged wedges Aedes beyond `concurrency` in-flight
 * requests (PERFORMANCE fact 2). Server sockets set `noDelay` (fact 1) and `drainTimeout` bounds a client
 * that stops reading (fact 3); meanwhile such a client holds up no other's QoS 0 messages (shapeQos0Deliveries).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import type { Duplex } from 'node:stream';
import { LIMITS } from '../src/protocol/limits.js';
import { limitPacketSize } from './packet-limit.js';
import { refuseMqtt5 } from './protocol-version.js';

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
}

export interface TlsListenerOptions {
  port: number;
  /** PEM text. */
  cert: string;
  key: string;
  /** PEM text; when given, client certificates are required and verified against it. */
  ca?: string | undefined;
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
  /** [SPEC 8] Largest MQTT packet a client may send; a larger one closes its connection. */
  maxPacketBytes?: number;
  /** Unflushed bytes beyond which QoS 0 messages for a client are dropped (default 1 MiB). */
  maxQos0BacklogBytes?: number;
}

export interface BrokerAddresses {
  mqtt: string;
  mqtts?: string;
  ws?: string;
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

/** ALPN as AWS IoT: `x-amzn-mqtt-ca` when offered (AWS SDKs on 443), else whatever the client asks first. */
export function selectAlpn({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes('x-amzn-mqtt-ca')) return 'x-amzn-mqtt-ca';
  if (protocols.includes('mqtt')) return 'mqtt';
  return protocols[0];
}

/** Reads TLS material named by configuration (file paths) once, at start. */
export function readPem(path: string): string {
  return readFileSync(path, 'utf8');
}

function listen(server: NetServer | TlsServer | HttpServer, port: number, host: string, name: string) {
  return new Promise<AddressInfo>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE')
        reject(new Error(`${name} ${port} is in use; set ${name}`, { cause: err }));
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function closeServer(server: NetServer | TlsServer | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

function hostPort(scheme: string, a: AddressInfo, path = ''): string {
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}${path}`;
}

/**
 * A request's connection corked from its arrival until its reply is written: a reply ready within the same
 * event-loop turn (a quick answer) leaves together with the PUBACK in one write, one syscall and one segment,
 * instead of two. A reply that is not ready by the next turn does not hold the PUBACK back any longer.
 * A class rather than closures: this runs on every request.
 */
class HeldWrites {
  private corked = true;
  private alone: NodeJS.Immediate;

  constructor(private readonly conn: Duplex) {
    conn.cork();
    this.alone = setImmediate(HeldWrites.release, this);
  }

  static release(held: HeldWrites): void {
    if (!held.corked) return;
    held.corked = false;
    held.conn.uncork();
  }

  /** Aedes writes a reply in an immediate queued by `client.publish`; this one is queued after it. */
  releaseAfterReply(): void {
    if (!this.corked) return;
    clearImmediate(this.alone);
    this.alone = setImmediate(HeldWrites.release, this);
  }
}

/** Aedes' per-client QoS 0 delivery: an instance property that its type declarations leave out. */
type DeliverQos0 = (packet: AedesPublishPacket, done: () => void) => void;
const ignore = () => {};

/**
 * How QoS 0 messages reach a client, changed in two ways. Installed before the client can subscribe, which is when
 * Aedes takes the function for each subscription.
 *
 * 1. A stalled reader holds up no one. Aedes fans a message out to every subscriber before the message counts as
 *    done, with at most `concurrency` (100) messages in flight broker-wide, and a delivery is done only once the
 *    subscriber's socket takes the write: a subscriber that stops reading holds every message sent to it until
 *    drainTimeout ends it, and once 100 wait on it nothing moves for anybody (bench S7: every round trip stalled
 *    for the whole drainTimeout). A delivery is therefore done at once with its write left behind the socket's
 *    buffer, and a message for a client with more than `maxBytes` unflushed is dropped: QoS 0 promises at most
 *    once. A client that never reads again still ends at drainTimeout.
 * 2. Writes batched. Aedes writes each delivery in an immediate of its own, one syscall each. The connection is
 *    corked at a delivery and uncorked by an immediate queued after that delivery's write; deliveries made
 *    meanwhile (whose writes may come later) have it corked again for one more immediate. A subscriber of a busy
 *    topic thus gets each event-loop turn's messages in one write, and every write leaves within two turns.
 */
function shapeQos0Deliveries(client: Client, maxBytes: number): void {
  const c = client as Client & { deliver0: DeliverQos0 };
  const deliver = c.deliver0;
  const conn = client.conn;
  let flushing = false;
  let deliveredSince = 0;
  // While corked, the socket's buffer holds the turn's writes too: what counts is what it left at the last flush.
  let unflushed = 0;
  const flush = () => {
    conn.uncork();
    unflushed = conn.writableLength;
    if (deliveredSince === 0) {
      flushing = false;
      return;
    }
    deliveredSince = 0;
    conn.cork();
    setImmediate(flush);
  };
  c.deliver0 = (packet, done) => {
    if ((flushing ? unflushed : conn.writableLength) <= maxBytes) {
      deliver(packet, ignore);
      if (flushing) deliveredSince++;
      else {
        flushing = true;
        conn.cork();
        setImmediate(flush);
      }
    }
    // Never synchronously: a done() within the emit recurses through every queued message (PERFORMANCE fact 3).
    setImmediate(done);
  };
}

export function createBroker(options: BrokerOptions): EmbeddedBroker {
  const { hooks, log } = options;
  // What the hooks see of a client, built once when it connects: the hooks run on every publish, and neither
  // the identity nor the peer certificate changes during a connection.
  const views = new WeakMap<Client, BrokerClient>();
  // Reply payloads in flight to their requester: the only packets on private topics authorizeForward lets by.
  const directReplies = new WeakSet<Buffer>();

  const certificateCn = (client: Client): string | undefined => {
    const conn = client.conn as Partial<TLSSocket>;
    if (typeof conn.getPeerCertificate !== 'function' || conn.authorized !== true) return undefined;
    const cn = conn.getPeerCertificate().subject?.CN;
    return typeof cn === 'string' ? cn : undefined;
  };
  const view = (client: Client): BrokerClient => {
    let v = views.get(client);
    if (v === undefined) {
      v = { id: client.id, identity: undefined, certificateCn: certificateCn(client) };
      views.set(client, v);
    }
    return v;
  };

  const authenticate =
    hooks.authenticate ?? (async (client: BrokerClient) => ({ ok: true, identity: client.certificateCn }));

  const aedes = new Aedes({
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
    authenticate(client, username, password, done) {
      const connecting = view(client);
      authenticate(connecting, username, password).then(
        (result) => {
          if (!result.ok) {
            const err = new Error('not authorized') as AuthenticateError;
            err.returnCode = 5 as AuthenticateError['returnCode'];
            return done(err, false);
          }
          if (result.identity !== undefined) views.set(client, { ...connecting, identity: result.identity });
          done(null, true);
        },
        (err: unknown) => {
          log.error({ err }, 'authenticate hook failed');
          const e = new Error('server unavailable') as AuthenticateError;
          e.returnCode = 3 as AuthenticateError['returnCode'];
          done(e, false);
        },
      );
    },
    authorizeSubscribe(client, sub, done) {
      if (hooks.authorizeSubscribe && !hooks.authorizeSubscribe(view(client), sub.topic)) {
        return done(new Error(`subscription to ${sub.topic} refused`));
      }
      done(null, sub);
    },
    authorizePublish(client, packet, done) {
      if (client === null) return done(new Error('publish without a client'));
      if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS topics are reserved'));
      const who = view(client);
      const decision = hooks.inspectPublish(who, packet.topic);
      if (decision === 'refuse') {
        log.warn({ clientId: client.id, topic: packet.topic }, 'publish refused; disconnecting the client');
        return done(new Error(`publish to ${packet.topic} refused`));
      }
      if (decision === 'answer') {
        // Acknowledge first (done below, which PUBACKs), answer when the service is done.
        const qos = packet.qos >= 1 ? 1 : 0;
        const held = new HeldWrites(client.conn);
        hooks.answer(who, packet.topic, packet.payload as Buffer).then(
          (reply) => {
            if (reply === undefined || client.closed) return HeldWrites.release(held);
            directReplies.add(reply.payload);
            client.publish(
              { cmd: 'publish', topic: reply.topic, payload: reply.payload, qos, retain: false, dup: false },
              (err) => {
                if (err) log.debug({ err, clientId: client.id }, 'reply not delivered');
              },
            );
            held.releaseAfterReply();
          },
          (err: unknown) => {
            HeldWrites.release(held);
            log.error({ err, topic: packet.topic }, 'answer hook failed');
          },
        );
      }
      done(null);
    },
    authorizeForward(client, packet) {
      // A reply on its way to its requester is recognised by its payload alone, before any topic is parsed.
      if (directReplies.has(packet.payload as Buffer)) return packet;
      return hooks.isPrivateTopic(packet.topic) ? null : packet;
    },
  });
  aedes.on('clientError', (client, err) =>
    log.debug({ clientId: client.id, err: err.message }, 'client error'),
  );
  aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'connection error'));

  const maxPacketBytes = options.maxPacketBytes ?? LIMITS.MAX_MQTT_PACKET_BYTES;
  const maxQos0BacklogBytes = options.maxQos0BacklogBytes ?? 1024 * 1024;
  const handle = (conn: Duplex, req?: IncomingMessage) => {
    limitPacketSize(conn, maxPacketBytes, (size) =>
      log.warn({ size, limit: maxPacketBytes }, 'MQTT packet over the size limit; connection closed'),
    );
    shapeQos0Deliveries(aedes.handle(conn, req), maxQos0BacklogBytes);
  };
  const onSocket = (socket: Socket) => {
    socket.setNoDelay(true);
    handle(socket);
  };
  const tcp = createNetServer({ noDelay: true }, onSocket);
  const tls = options.tls
    ? createTlsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.ca !== undefined
            ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }
            : {}),
          ALPNCallback: selectAlpn,
        },
        (socket) => {
          socket.setNoDelay(true);
          handle(socket);
        },
      )
    : undefined;
  tls?.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
  let http: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  if (options.wsPort !== undefined) {
    http = createHttpServer();
    http.on('connection', (socket: Socket) => socket.setNoDelay(true));
    wss = new WebSocketServer({
      server: http,
      path: '/mqtt',
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
    });
    wss.on('connection', (ws, req: IncomingMessage) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => ws.terminate());
      handle(stream, req);
    });
  }

  return {
    aedes,
    disconnectIdentity(identity) {
      // Aedes keeps connected clients by id; the map is not in its type declarations.
      const clients = Object.values((aedes as unknown as { clients: Record<string, Client> }).clients);
      const matching = clients.filter((c) => views.get(c)?.identity === identity);
      for (const c of matching) c.close();
      return matching.length;
    },
    async start() {
      await aedes.listen();
      const addresses: BrokerAddresses = {
        mqtt: hostPort('mqtt', await listen(tcp, options.port, options.host, 'MQTT_PORT')),
      };
      if (tls && options.tls) {
        addresses.mqtts = hostPort('mqtts', await listen(tls, options.tls.port, options.host, 'MQTTS_PORT'));
      }
      if (http && options.wsPort !== undefined) {
        addresses.ws = hostPort(
          'ws',
          await listen(http, options.wsPort, options.host, 'MQTT_WS_PORT'),
          '/mqtt',
        );
      }
      return addresses;
    },
    async close() {
      const servers = [tcp, tls, http].filter((s): s is NetServer => s !== undefined);
      const closing = servers.map(closeServer);
      for (const ws of wss?.clients ?? []) ws.terminate();
      wss?.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      http?.closeAllConnections();
      await Promise.all(closing);
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
