import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LIMITS } from '../protocol/limits.js';
import type { OperatorKeyResolver, OperatorPrincipal } from '../service/operator-keys.js';
import type { OperatorRole } from '../store/operator-keys.js';
import { createRateLimiter, type RateLimit } from '../service/token-bucket.js';
import { sendError } from './error-handler.js';
import { DEFAULT_TENANT_ID } from '../service/tenants.js';
import { setRequestTenant } from './tenant-scope.js';
import { EMPTY_SHA256, readSigV4Claim, verifySigV4, type SigV4Claim } from './sigv4.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The operator key the request authenticated with (AUTH_MODE=off: a local admin). */
    principal: OperatorPrincipal | undefined;
  }
}

export interface AuthOptions {
  mode: 'required' | 'off';
  resolver: OperatorKeyResolver | undefined;
  clock: () => Date;
  rateLimit?: RateLimit;
  maxClockSkewSeconds?: number;
}

/**
 * Routes open without a key: probes carry no credentials, and the dashboard's files and the OpenAPI UI are static
 * (the dashboard sends the key with each API call it makes). They reveal no fleet data.
 */
const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/', '/assets/:file']);
const LOCAL_ADMIN: OperatorPrincipal = { accessKeyId: 'local', role: 'admin', tenantId: DEFAULT_TENANT_ID };

/**
 * [protocol §5] viewer: read-only; operator: jobs, templates, things, groups and device credentials; admin: all,
 * including operator keys. Decided on the matched route pattern, never on the raw URL, so an encoded path
 * cannot route to one resource while the check sees another.
 */
export function roleAllows(role: OperatorRole, method: string, route: string | undefined): boolean {
  const r = route ?? '';
  if (r === '/tenants' || r.startsWith('/tenants/')) return role === 'admin';
  if (r === '/operator-keys' || r.startsWith('/operator-keys/')) return role === 'admin';
  if (role !== 'viewer') return true;
  if (/^\/things\/[^/]+\/credentials/.test(r)) return false;
  return method === 'GET' || method === 'HEAD';
}

/**
 * What is the deployment's rather than a tenant's: tenants themselves and GET /metrics (counts over every
 * tenant, the process's own figures) are for keys of the default tenant only (docs/tenants.md).
 */
export function tenantAllows(tenantId: string, route: string | undefined): boolean {
  const r = route ?? '';
  if (r === '/tenants' || r.startsWith('/tenants/') || r === '/metrics')
    return tenantId === DEFAULT_TENANT_ID;
  return true;
}

interface PendingSigV4 {
  claim: SigV4Claim;
  secret: string;
  principal: OperatorPrincipal;
}

const pendingSig = new WeakMap<FastifyRequest, PendingSigV4>();
const bodyHash = new WeakMap<FastifyRequest, { digest?: string }>();

function hasBody(request: FastifyRequest): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return false;
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Installs operator authentication on the root instance: `Authorization: Bearer <accessKeyId>.<secret>` or an
 * AWS SigV4 signature made with the key's access key id and secret. Failures are 401 (no or bad credentials),
 * 403 (role), 429 (rate). A SigV4 body is hashed as it is read and checked before the handler runs.
 */
export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const skew = (options.maxClockSkewSeconds ?? LIMITS.SIGV4_MAX_CLOCK_SKEW_SECONDS) * 1000;
  const limiter = createRateLimiter(
    options.rateLimit ?? {
      perSecond: LIMITS.OPERATOR_REQUESTS_PER_SECOND,
      burst: LIMITS.OPERATOR_REQUEST_BURST,
    },
  );
  app.decorateRequest('principal', undefined);

  const throttled = (reply: FastifyReply, key: string) =>
    sendError(
      reply.header('retry-after', String(limiter.retryAfterSeconds(key))),
      'Throttled',
      'Too many requests for this key; retry after the number of seconds in Retry-After.',
    );
  // A caller without valid credentials spends the bucket of its address, so guessing keys is throttled too.
  const unauthorized = (request: FastifyRequest, reply: FastifyReply, message: string) => {
    request.log.warn({ ip: request.ip, reason: message }, 'operator authentication failed');
    const key = `ip:${request.ip}`;
    if (!limiter.take(key)) return throttled(reply, key);
    return sendError(reply, 'Unauthorized', message);
  };
  // Every authenticated request spends its key's token, a forbidden one too.
  const admit = (request: FastifyRequest, reply: FastifyReply, principal: OperatorPrincipal) => {
    if (!limiter.take(`key:${principal.accessKeyId}`))
      return throttled(reply, `key:${principal.accessKeyId}`);
    if (!roleAllows(principal.role, request.method, request.routeOptions.url)) {
      request.log.warn(
        { accessKeyId: principal.accessKeyId, role: principal.role },
        'operator request forbidden by role',
      );
      return sendError(
        reply,
        'Forbidden',
        `the ${principal.role} role may not ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}; use a key with a broader role`,
      );
    }
    if (!tenantAllows(principal.tenantId, request.routeOptions.url)) {
      return sendError(
        reply,
        'Forbidden',
        `${request.routeOptions.url ?? ''} belongs to the deployment: use a key of the default tenant`,
      );
    }
    request.principal = principal;
    setRequestTenant(principal.tenantId);
    return undefined;
  };

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && (PUBLIC_ROUTES.has(route) || route === '/docs' || route.startsWith('/docs/')))
      return;
    if (options.mode === 'off') {
      request.principal = LOCAL_ADMIN;
      setRequestTenant(LOCAL_ADMIN.tenantId);
      return;
    }
    if (options.resolver === undefined) {
      return unauthorized(request, reply, 'no operator keys can be checked: the server has no master key');
    }
    const resolver = options.resolver;
    const header = request.headers.authorization;
    if (header === undefined || header === '') {
      return unauthorized(request, reply, 'send Authorization: Bearer <key> or sign the request with SigV4');
    }
    if (header.startsWith('Bearer ')) {
      const principal = await resolver.byBearer(header.slice('Bearer '.length).trim());
      if (principal === undefined) return unauthorized(request, reply, 'the key is not valid or was revoked');
      return admit(request, reply, principal);
    }
    const claim = readSigV4Claim(request.headers, options.clock(), skew);
    if (typeof claim === 'string') return unauthorized(request, reply, claim);
    const key = await resolver.secretFor(claim.auth.accessKeyId);
    if (key === undefined)
      return unauthorized(request, reply, 'the access key id is not valid or was revoked');
    const pending: PendingSigV4 = { claim, secret: key.secret, principal: key.principal };
    if (!hasBody(request)) {
      if (claim.claimedHash !== undefined && claim.claimedHash !== EMPTY_SHA256) {
        return unauthorized(request, reply, 'x-amz-content-sha256 does not match the body');
      }
      return verify(request, reply, pending, EMPTY_SHA256);
    }
    // The signature can only be checked once the body is read: preParsing hashes it, preValidation checks.
    pendingSig.set(request, pending);
    return undefined;
  });

  const verify = (request: FastifyRequest, reply: FastifyReply, p: PendingSigV4, payloadHash: string) => {
    if (p.claim.claimedHash !== undefined && p.claim.claimedHash !== payloadHash) {
      return unauthorized(request, reply, 'x-amz-content-sha256 does not match the body');
    }
    const signed = { method: request.method, url: request.raw.url ?? request.url, headers: request.headers };
    if (!verifySigV4(signed, p.claim, payloadHash, p.secret)) {
      return unauthorized(
        request,
        reply,
        'the SigV4 signature does not match the request; check the secret and clock',
      );
    }
    return admit(request, reply, p.principal);
  };

  app.addHook('preParsing', async (request, _reply, payload) => {
    if (!pendingSig.has(request)) return payload;
    const state: { digest?: string } = {};
    bodyHash.set(request, state);
    const hash = createHash('sha256');
    const source = payload as Readable;
    const hashed = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        state.digest = hash.digest('hex');
        cb();
      },
    });
    source.on('error', (err) => hashed.destroy(err));
    return source.pipe(hashed);
  });

  app.addHook('preValidation', async (request, reply) => {
    const pending = pendingSig.get(request);
    if (pending === undefined) return;
    pendingSig.delete(request);
    return verify(request, reply, pending, bodyHash.get(request)?.digest ?? EMPTY_SHA256);
  });
}
