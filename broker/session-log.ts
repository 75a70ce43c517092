import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerHooks } from './index.js';

type Authenticate = NonNullable<BrokerHooks['authenticate']>;

export interface SessionLog {
  /** The authenticate hook, also logging each refused login (wrong secret, unknown identity, no CN). */
  authenticate(hook: Authenticate): Authenticate;
  /** One info line when an MQTT client of the embedded broker connects, and one when it disconnects. */
  attach(aedes: Aedes): void;
}

/** Device session lines, with the thing name a client authenticated as when there is one. */
export function createSessionLog(log: Logger): SessionLog {
  const identities = new Map<string, string>();
  return {
    authenticate: (hook) => async (client, username, password) => {
      const result = await hook(client, username, password);
      if (!result.ok) log.warn({ clientId: client.id, username }, 'device connection refused');
      else if (result.identity !== undefined) identities.set(client.id, result.identity);
      return result;
    },
    attach(aedes) {
      aedes.on('client', (client) =>
        log.info({ clientId: client.id, thingName: identities.get(client.id) }, 'device connected'),
      );
      aedes.on('clientDisconnect', (client) => {
        log.info({ clientId: client.id, thingName: identities.get(client.id) }, 'device disconnected');
        identities.delete(client.id);
      });
    },
  };
}
