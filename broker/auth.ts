/**
 * [protocol §5] Who a connecting client is. In order:
 * 1. a verified client certificate (mTLS listener with TLS_CA): its CN is the thing name, and the MQTT username
 *    is ignored because AWS device SDKs put a metrics string there;
 * 2. username = operator access key id, password = its secret: an operator client (fleet events);
 * 3. username = thing name, password = one of the thing's ACTIVE secrets.
 * Anything else is refused at CONNACK. The broker knows nothing of the store: the checks are handed in.
 */
import { isValidThingName } from '../src/protocol/limits.js';
import type { BrokerClient, BrokerHooks } from './index.js';
import { OPERATOR_PREFIX } from './acl.js';

export interface DeviceAuthChecks {
  /** True when `secret` is an ACTIVE secret of `thingName`. */
  verifyDevice(thingName: string, secret: string): Promise<boolean>;
  /** True when `secret` is the secret of the ACTIVE operator key `accessKeyId`; undefined if not a key id. */
  verifyOperator(accessKeyId: string, secret: string): Promise<boolean | undefined>;
}

export function createAuthenticateHook(checks: DeviceAuthChecks): NonNullable<BrokerHooks['authenticate']> {
  return async (client: BrokerClient, username: string | undefined, password: Buffer | undefined) => {
    if (client.certificateCn !== undefined) {
      return isValidThingName(client.certificateCn)
        ? { ok: true, identity: client.certificateCn }
        : { ok: false };
    }
    if (username === undefined || password === undefined || password.length === 0) return { ok: false };
    const secret = password.toString('utf8');
    const operator = await checks.verifyOperator(username, secret);
    if (operator !== undefined)
      return operator ? { ok: true, identity: `${OPERATOR_PREFIX}${username}` } : { ok: false };
    if (!isValidThingName(username)) return { ok: false };
    return (await checks.verifyDevice(username, secret)) ? { ok: true, identity: username } : { ok: false };
  };
}
