import net, { type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy that breaks connections the way networks and databases do, for fault-injection tests. Modes, for
 * new connections and the traffic of open ones:
 * - pass: forwards both ways;
 * - refuse: a new connection is reset at once (a database that is down);
 * - blackhole: nothing is forwarded and nothing is answered, no RST, no FIN (a failover, a dropped NAT entry).
 *   A connection that was open or opened during a blackhole stays dead after it: its bytes are gone, as a
 *   real network's are, and the peer only finds out by its own timeouts.
 * resetAll() resets (RST) every open connection (a restart); closeAll() closes them (FIN, a clean shutdown).
 */
export type FaultMode = 'pass' | 'refuse' | 'blackhole';

export interface FaultProxy {
  /** The port to give the client instead of the target's (on 127.0.0.1). */
  readonly port: number;
  readonly mode: FaultMode;
  setMode(mode: FaultMode): void;
  resetAll(): void;
  closeAll(): void;
  /** Open proxied connections. */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  dead: boolean;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  const pairs = new Set<Pair>();

  const server = net.createServer((client) => {
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: Pair = { client, upstream, dead: mode === 'blackhole' };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (!pair.dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dead) client.write(chunk);
    });
    // A dead connection's upstream closing (the server timed it out) is not passed on either.
    client.on('error', drop);
    client.on('close', drop);
    upstream.on('error', () => (pair.dead ? upstream.destroy() : drop()));
    upstream.on('close', () => (pair.dead ? undefined : drop()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as AddressInfo).port,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
      if (next === 'blackhole') for (const p of pairs) p.dead = true;
    },
    resetAll() {
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    closeAll() {
      for (const p of pairs) {
        p.client.end();
        p.upstream.end();
      }
    },
    connections: () => pairs.size,
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
