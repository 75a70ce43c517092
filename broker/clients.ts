/**
 * Who each connected client is: the view the hooks get (id, authenticated identity, mTLS certificate CN), the
 * Aedes authenticate handler around the `authenticate` hook, and an index of connected clients by identity
 * kept from Aedes' own connect and disconnect events (so nothing reads Aedes' private client table).
 */
import type { TLSSocket } from 'node:tls';
import type { Aedes, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerClient, BrokerHooks } from './index.js';

export interface ClientRegistry {
  view(client: Client): BrokerClient;
  /** The Aedes `authenticate` option. */
  authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void;
  /** Starts following `aedes`' connect and disconnect events. */
  track(aedes: Aedes): void;
  /** Closes every connection authenticated as `identity`; returns how many. */
  disconnectIdentity(identity: string): number;
}

function certificateCn(client: Client): string | undefined {
  const conn = client.conn as Partial<TLSSocket>;
  if (typeof conn.getPeerCertificate !== 'function' || conn.authorized !== true) return undefined;
  const cn = conn.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

export function createClientRegistry(hooks: Pick<BrokerHooks, 'authenticate'>, log: Logger): ClientRegistry {
  // Built once when a client connects: the hooks run on every publish, and neither the identity nor the peer
  // certificate changes during a connection.
  const views = new WeakMap<Client, BrokerClient>();
  const byIdentity = new Map<string, Set<Client>>();
  const authenticate =
    hooks.authenticate ?? (async (client: BrokerClient) => ({ ok: true, identity: client.certificateCn }));

  const view = (client: Client): BrokerClient => {
    let v = views.get(client);
    if (v === undefined) {
      v = { id: client.id, identity: undefined, certificateCn: certificateCn(client) };
      views.set(client, v);
    }
    return v;
  };

  return {
    view,
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
    track(aedes) {
      aedes.on('client', (client) => {
        const identity = views.get(client)?.identity;
        if (identity === undefined) return;
        let set = byIdentity.get(identity);
        if (set === undefined) byIdentity.set(identity, (set = new Set()));
        set.add(client);
      });
      aedes.on('clientDisconnect', (client) => {
        const identity = views.get(client)?.identity;
        if (identity === undefined) return;
        const set = byIdentity.get(identity);
        set?.delete(client);
        if (set?.size === 0) byIdentity.delete(identity);
      });
    },
    disconnectIdentity(identity) {
      const matching = [...(byIdentity.get(identity) ?? [])];
      for (const c of matching) c.close();
      return matching.length;
    },
  };
}
