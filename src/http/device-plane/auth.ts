import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/** The per-thing secret check the security layer provides (src/service/credentials.ts). */
export type VerifyDeviceSecret = (
  thingName: string,
  secret: string,
) => Promise<{ ok: true; thingName: string } | { ok: false; reason: 'bad-credentials' | 'throttled' }>;

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
 * Device identity on the HTTPS data plane, the same two ways as on MQTT: a client certificate verified against
 * TLS_CA (its CN is the thing name), or the thing name and one of its secrets, here as HTTP Basic credentials.
 */
export function createDevicePlaneAuth(
  verify: VerifyDeviceSecret | undefined,
): (request: FastifyRequest) => Promise<string | undefined | 'refused' | 'throttled'> {
  return async (request) => {
    const socket = request.raw.socket as Partial<TLSSocket>;
    if (socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
      const cn = socket.getPeerCertificate().subject?.CN;
      if (typeof cn === 'string' && cn !== '') return cn;
    }
    const basic = parseBasicAuth(request.headers.authorization);
    if (basic === undefined) return undefined;
    if (verify === undefined || basic.user === '') return 'refused';
    const result = await verify(basic.user, basic.secret);
    if (result.ok) return result.thingName;
    return result.reason === 'throttled' ? 'throttled' : 'refused';
  };
}
