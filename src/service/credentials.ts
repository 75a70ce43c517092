import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS, isValidThingName } from '../protocol/limits.js';
import {
  insertThingCredential,
  lockThingForCredentials,
  revokeThingCredentials,
  selectActiveThingCredentials,
  selectThingCredentials,
  type ThingCredentialRow,
} from '../store/credentials.js';
import type { ServiceDeps } from './deps.js';
import { generateSecret, hashSecret, safeEqual, verifySecret } from './secret-hash.js';
import { createRateLimiter, type RateLimit } from './token-bucket.js';

/**
 * A thing's secret derived from the master key, so the server can reproduce it to check a SigV4 signature made
 * with it (HMAC is symmetric); the store still keeps only its scrypt hash, so a database copy alone yields none.
 */
export function deriveThingSecret(masterKey: Buffer, thingName: string, credentialId: string): string {
  return createHmac('sha256', masterKey)
    .update(`fleetjobs-thing-secret\n${thingName}\n${credentialId}`)
    .digest('base64url');
}

/** [protocol §5] Per-thing MQTT secrets: created and returned once, rotated, revoked. */
export interface CreatedCredential {
  thingName: string;
  credentialId: string;
  /** Shown once; only its hash is stored. */
  secret: string;
  createdAt: Date;
  /** Credentials a rotation revoked in the same transaction. */
  revokedCredentialIds: string[];
}

function checkThingName(thingName: string): void {
  if (!isValidThingName(thingName)) {
    throw new FleetJobsError('InvalidRequest', `thingName must match [a-zA-Z0-9:_-]{1,128}`);
  }
}

/**
 * Creates a secret for a thing. With `rotate`, every other ACTIVE secret of the thing is revoked in the same
 * transaction; without, the new one joins at most one other so a device fleet can switch over gradually.
 */
export async function createThingCredential(
  deps: ServiceDeps,
  thingName: string,
  options: { rotate: boolean; masterKey?: Buffer | undefined },
): Promise<CreatedCredential> {
  checkThingName(thingName);
  const credentialId = randomUUID();
  // With a master key (always, under AUTH_MODE=required) the secret also signs SigV4 requests.
  const secret =
    options.masterKey === undefined
      ? generateSecret()
      : deriveThingSecret(options.masterKey, thingName, credentialId);
  const secretHash = await hashSecret(secret);
  const now = deps.clock();
  const { row, revoked } = await deps.db.transaction(async (tx) => {
    if (!(await lockThingForCredentials(tx, thingName))) {
      throw new FleetJobsError('ResourceNotFound', `thing ${thingName} does not exist; create it first`);
    }
    const revokedIds = options.rotate ? await revokeThingCredentials(tx, thingName, undefined, now) : [];
    const inserted = await insertThingCredential(
      tx,
      { credentialId, thingName, secretHash },
      LIMITS.MAX_ACTIVE_CREDENTIALS_PER_THING,
      now,
    );
    return { row: inserted, revoked: revokedIds };
  });
  if (row === undefined) {
    throw new FleetJobsError(
      'LimitExceeded',
      `thing ${thingName} already has ${LIMITS.MAX_ACTIVE_CREDENTIALS_PER_THING} active secrets; rotate or revoke one`,
    );
  }
  return { thingName, credentialId, secret, createdAt: row.createdAt, revokedCredentialIds: revoked };
}

/** Revokes one secret, or all of the thing's when credentialId is undefined; returns the revoked ids. */
export async function revokeThingCredential(
  deps: ServiceDeps,
  thingName: string,
  credentialId: string | undefined,
): Promise<string[]> {
  checkThingName(thingName);
  const revoked = await revokeThingCredentials(deps.db, thingName, credentialId, deps.clock());
  if (credentialId !== undefined && revoked.length === 0) {
    throw new FleetJobsError(
      'ResourceNotFound',
      `thing ${thingName} has no active credential ${credentialId}; list its credentials`,
    );
  }
  return revoked;
}

export async function listThingCredentials(
  deps: ServiceDeps,
  thingName: string,
): Promise<Omit<ThingCredentialRow, 'secretHash'>[]> {
  checkThingName(thingName);
  const rows = await selectThingCredentials(deps.db, thingName);
  return rows.map(({ secretHash: _hash, ...rest }) => rest);
}

/**
 * The secrets of the thing's ACTIVE credentials as the master key derives them, for SigV4: read on every
 * request, so a revocation takes effect at once. A secret made without the master key is not among them.
 */
export async function thingSigningSecrets(
  deps: Pick<ServiceDeps, 'db'>,
  masterKey: Buffer,
  thingName: string,
): Promise<string[]> {
  if (!isValidThingName(thingName)) return [];
  const active = await selectActiveThingCredentials(deps.db, thingName);
  return active.map((c) => deriveThingSecret(masterKey, thingName, c.credentialId));
}

export type DeviceAuthResult =
  | { ok: true; thingName: string; credentialId: string }
  | { ok: false; reason: 'bad-credentials' | 'throttled' };

export interface DeviceAuthenticator {
  /** Checks username = thing name, password = one of its ACTIVE secrets. Never throws on bad input. */
  verify(thingName: string, secret: string): Promise<DeviceAuthResult>;
}

/** Failed logins a thing may make before it must wait: each costs an scrypt hash (~50 ms of a core). */
export const DEFAULT_AUTH_FAILURE_LIMIT: RateLimit = { perSecond: 0.2, burst: 10 };
const MAX_CACHED = 200_000;

/**
 * Verifies device secrets with scrypt once, then remembers an HMAC of the secret (keyed by a per-process random
 * key) for the credential id, so reconnects cost one indexed query instead of a slow hash. The ACTIVE rows are
 * read on every attempt, so a revocation takes effect on the next connect.
 */
export function createDeviceAuthenticator(
  deps: Pick<ServiceDeps, 'db' | 'log'>,
  options: { failureLimit?: RateLimit } = {},
): DeviceAuthenticator {
  const cacheKey = randomBytes(32);
  const verified = new Map<string, string>();
  const failures = createRateLimiter(options.failureLimit ?? DEFAULT_AUTH_FAILURE_LIMIT);
  const mac = (credentialId: string, secret: string) =>
    createHmac('sha256', cacheKey).update(credentialId).update('\0').update(secret).digest('base64url');

  return {
    async verify(thingName, secret) {
      if (!isValidThingName(thingName) || secret.length === 0 || secret.length > LIMITS.MAX_SECRET_CHARS) {
        return { ok: false, reason: 'bad-credentials' };
      }
      const active = await selectActiveThingCredentials(deps.db, thingName);
      for (const c of active) {
        const known = verified.get(c.credentialId);
        if (known !== undefined && safeEqual(known, mac(c.credentialId, secret))) {
          return { ok: true, thingName, credentialId: c.credentialId };
        }
      }
      if (active.length === 0) return { ok: false, reason: 'bad-credentials' };
      // A guesser pays for its own guesses: past the failure budget, refuse without hashing.
      if (failures.retryAfterSeconds(thingName) > 0) return { ok: false, reason: 'throttled' };
      for (const c of active) {
        if (await verifySecret(secret, c.secretHash)) {
          if (verified.size >= MAX_CACHED) verified.clear();
          verified.set(c.credentialId, mac(c.credentialId, secret));
          return { ok: true, thingName, credentialId: c.credentialId };
        }
      }
      failures.take(thingName);
      deps.log.warn({ thingName }, 'device login refused: wrong secret');
      return { ok: false, reason: 'bad-credentials' };
    },
  };
}
