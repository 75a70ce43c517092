/**
 * The embedded broker's listeners: plain TCP, TLS (optionally mTLS) and MQTT over WebSocket, each handing its
 * connections to one `handle` function. Server sockets set `noDelay` (protocol fact 1).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { WebSocketServer } from 'ws';

export interface TlsListenerOptions {
  port: number;
  /** PEM text. */
  cert: string;
  key: string;
  /** PEM text; when given, client certificates are required and verified against it. */
  ca?: string | undefined;
}

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: TlsListenerOptions | undefined;
  wsPort?: number | undefined;
}

export interface BrokerAddresses {
  mqtt: string;
  mqtts?: string;
  ws?: string;
}

export interface Listeners {
  start(): Promise<BrokerAddresses>;
  /**
   * Stops accepting, ends WebSocket connections, then runs `closeBroker` (which ends the MQTT connections the
   * servers would otherwise wait for) and resolves once every server has closed.
   */
  close(closeBroker: () => Promise<void>): Promise<void>;
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

export function createListeners(
  options: ListenerOptions,
  log: Logger,
  handle: (conn: Duplex, req?: IncomingMessage) => void,
): Listeners {
  const tcp = createNetServer({ noDelay: true }, (socket: Socket) => {
    socket.setNoDelay(true);
    handle(socket);
  });
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
  const http = options.wsPort === undefined ? undefined : createHttpServer();
  http?.on('connection', (socket: Socket) => socket.setNoDelay(true));
  let wss: WebSocketServer | undefined;

  return {
    async start() {
      const addresses: BrokerAddresses = {
        mqtt: hostPort('mqtt', await listen(tcp, options.port, options.host, 'MQTT_PORT')),
      };
      if (tls && options.tls) {
        addresses.mqtts = hostPort('mqtts', await listen(tls, options.tls.port, options.host, 'MQTTS_PORT'));
      }
      if (http && options.wsPort !== undefined) {
        // ws is imported only with MQTT_WS_PORT: start-up without it does not load the module.
        const { createWebSocketStream, WebSocketServer } = await import('ws');
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
        addresses.ws = hostPort(
          'ws',
          await listen(http, options.wsPort, options.host, 'MQTT_WS_PORT'),
          '/mqtt',
        );
      }
      return addresses;
    },
    async close(closeBroker) {
      const servers = [tcp, tls, http].filter((s): s is NetServer => s !== undefined);
      const closing = servers.map(closeServer);
      for (const ws of wss?.clients ?? []) ws.terminate();
      wss?.close();
      await closeBroker();
      http?.closeAllConnections();
      await Promise.all(closing);
    },
  };
}
