import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerHooks } from './index.js';

type Authenticate = NonNullable<BrokerHooks['authenticate']>;

/** A broker authenticate hook that also logs each refused MQTT login (wrong secret, unknown identity, no CN). */
export function loggingRefusals(authenticate: Authenticate, log: Logger): Authenticate {
  return async (client, username, password) => {
    const result = await authenticate(client, username, password);
    if (!result.ok) log.warn({ clientId: client.id, username }, 'device connection refused');
    return result;
  };
}

/** One info line when an MQTT client of the embedded broker connects, and one when it disconnects. */
export function logDeviceSessions(aedes: Aedes, log: Logger): void {
  aedes.on('client', (client) => log.info({ clientId: client.id }, 'device connected'));
  aedes.on('clientDisconnect', (client) => log.info({ clientId: client.id }, 'device disconnected'));
}
