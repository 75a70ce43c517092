import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { OperatorPrincipal } from '../../service/operator-keys.js';
import { readSigV4Claim, verifySigV4 } from '../sigv4.js';

/** The per-thing secret check the security layer provides (src/service/credentials.ts). */
export type VerifyDeviceSecret = (
  thingName: string,
  secret: string,
) => Promise<{ ok: true; thingName: string } | { ok: false; reason: 'bad-credentials' | 'throttled' }>;

/** The secrets a SigV4 access key id may have signed with; see thingSigningSecrets and OperatorKeyResolver. */
export interface SigV4Secrets {
  /** The secrets of the thing's ACTIVE credentials (the access key id is the thing name). */
  thing(thingName: string): Promise<string[]>;
  /** An ACTIVE operator key: it may act for any thing its role allows. */
  operator(accessKeyId: string): Promise<{ principal: OperatorPrincipal; secret: string } | undefined>;
  clock: () => Date;
  maxClockSkewSeconds: number;
}

/** Who a data-plane request is: a thing, or an operator key acting for the thing its path names. */
export type DeviceCaller =
  | { thingName: string }
  | { operator: OperatorPrincipal }
  /** No credentials at all. */
  | undefined
  | { refused: string }
  | 'throttled';

/** AWS clients sign the data plane with this service name; a signature for another service is not for us. */
export const DATA_PLANE_SIGNING_NAME = 'iot-jobs-data';

/** `Authorization: Basic base64(thingName:secret)`; undefined when the header is absent or another scheme. */
export function parseBasicAuth(header: string | undefined): { user: string; secret: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return { user: '', secret: '' };
  return { user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/**
 * Device identity on the HTTPS data plane: a client certificate verified against TLS_CA (its CN is the thing
 * name); the thing name and one of its secrets as HTTP Basic credentials; or an AWS SigV4 signature (service
 * iot-jobs-data, as the AWS CLI and SDKs send) with the thing name as access key id and its secret as secret
 * access key, or with an operator key. `payloadHash` is the hex SHA-256 of the body as received.
 */
export function createDevicePlaneAuth(
  verify: VerifyDeviceSecret | undefined,
  sigv4: SigV4Secrets | undefined,
): (request: FastifyRequest, payloadHash: string) => Promise<DeviceCaller> {
  return async (request, payloadHash) => {
    const socket = request.raw.socket as Partial<TLSSocket>;
    if (socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
      const cn = socket.getPeerCertificate().subject?.CN;
      if (typeof cn === 'string' && cn !== '') return { thingName: cn };
    }
    const header = request.headers.authorization;
    if (header?.startsWith('AWS4-')) {
      if (sigv4 === undefined) return { refused: 'SigV4 cannot be checked: the server has no master key' };
      const claim = readSigV4Claim(request.headers, sigv4.clock(), sigv4.maxClockSkewSeconds * 1000);
      if (typeof claim === 'string') return { refused: claim };
      if (claim.auth.service !== DATA_PLANE_SIGNING_NAME) {
        return { refused: `sign for the service ${DATA_PLANE_SIGNING_NAME}, not ${claim.auth.service}` };
      }
      const signed = {
        method: request.method,
        url: request.raw.url ?? request.url,
        headers: request.headers,
      };
      const { accessKeyId } = claim.auth;
      // An id can name both an operator key and a thing; only the holder of one of the secrets signs correctly.
      const operator = await sigv4.operator(accessKeyId);
      if (operator !== undefined && verifySigV4(signed, claim, payloadHash, operator.secret)) {
        return { operator: operator.principal };
      }
      for (const secret of await sigv4.thing(accessKeyId)) {
        if (verifySigV4(signed, claim, payloadHash, secret)) return { thingName: accessKeyId };
      }
      return {
        refused:
          'the SigV4 signature does not match: sign with the thing name as access key id and a secret created with AUTH_MODE=required (or an operator key)',
      };
    }
    const basic = parseBasicAuth(header);
    if (basic === undefined) return undefined;
    if (verify === undefined || basic.user === '') return { refused: 'the thing name or secret is wrong' };
    const result = await verify(basic.user, basic.secret);
    if (result.ok) return { thingName: result.thingName };
    return result.reason === 'throttled' ? 'throttled' : { refused: 'the thing name or secret is wrong' };
  };
}
