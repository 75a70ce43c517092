import { createHmac, randomBytes } from 'node:crypto';
import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import {
  insertFirstOperatorKey,
  insertOperatorKey,
  lockOperatorKeys,
  revokeOperatorKey,
  selectOperatorKey,
  selectOperatorKeys,
  type OperatorKeyRow,
  type OperatorRole,
} from '../store/operator-keys.js';
import type { ServiceDeps } from './deps.js';
import { generateSalt, hashSecret, safeEqual, verifySecret } from './secret-hash.js';
import { DEFAULT_TENANT_ID } from './tenants.js';

/**
 * [protocol §5] Operator API keys. A key is an access key id plus a secret; the secret is HMAC-SHA256(master key, id,
 * salt) and is never stored. SigV4 is a symmetric MAC, so the server must reproduce the secret to check a
 * signature; deriving it from a master key kept outside the database (FLEETJOBS_DATA_DIR/master.key or
 * FLEETJOBS_MASTER_KEY) means a copy of the database alone yields no usable key.
 */
export const OPERATOR_ROLES: readonly OperatorRole[] = ['admin', 'operator', 'viewer'];

export interface OperatorPrincipal {
  accessKeyId: string;
  role: OperatorRole;
  /** The tenant whose rows the key's requests see (docs/tenants.md). */
  tenantId: string;
}

export interface CreatedOperatorKey extends OperatorPrincipal {
  description: string | null;
  /** The SigV4 secret access key; shown once. */
  secretAccessKey: string;
  /** `Authorization: Bearer <token>`; shown once. */
  token: string;
  createdAt: Date;
}

export interface OperatorKeyView extends OperatorPrincipal {
  description: string | null;
  status: 'ACTIVE' | 'REVOKED';
  createdAt: Date;
  revokedAt: Date | null;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Like AWS's AKIA... ids: 20 upper-case characters, "FJ" then 18 random base32 digits. */
export const ACCESS_KEY_ID_PATTERN = /^FJ[A-Z2-7]{18}$/;

function newAccessKeyId(): string {
  const bytes = randomBytes(18);
  let id = 'FJ';
  for (const b of bytes) id += BASE32[b & 31];
  return id;
}

export function deriveOperatorSecret(masterKey: Buffer, accessKeyId: string, salt: string): string {
  return createHmac('sha256', masterKey)
    .update(`fleetjobs-operator-key\n${accessKeyId}\n${salt}`)
    .digest('base64url');
}

export function bearerToken(accessKeyId: string, secret: string): string {
  return `${accessKeyId}.${secret}`;
}

function view(row: OperatorKeyRow): OperatorKeyView {
  return {
    accessKeyId: row.accessKeyId,
    role: row.role,
    tenantId: row.tenantId,
    description: row.description,
    status: row.status,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}

async function newKeyFields(
  masterKey: Buffer,
  tenantId: string,
  role: OperatorRole,
  description: string | undefined,
) {
  const accessKeyId = newAccessKeyId();
  const secretSalt = generateSalt();
  const secret = deriveOperatorSecret(masterKey, accessKeyId, secretSalt);
  const secretCheck = await hashSecret(secret);
  return {
    fields: { accessKeyId, tenantId, role, description: description ?? null, secretSalt, secretCheck },
    secret,
  };
}

function created(row: OperatorKeyRow, secret: string): CreatedOperatorKey {
  return {
    accessKeyId: row.accessKeyId,
    role: row.role,
    tenantId: row.tenantId,
    description: row.description,
    secretAccessKey: secret,
    token: bearerToken(row.accessKeyId, secret),
    createdAt: row.createdAt,
  };
}

/**
 * A key of `input.tenantId`. Through a tenant db the insert is checked against that db's tenant (migration
 * 0008's policy); the caller decides which tenants a principal may make keys for.
 */
export async function createOperatorKey(
  deps: ServiceDeps,
  masterKey: Buffer,
  input: { tenantId: string; role: OperatorRole; description?: string | undefined },
): Promise<CreatedOperatorKey> {
  if (!OPERATOR_ROLES.includes(input.role)) {
    throw new FleetJobsError('InvalidRequest', `role must be one of ${OPERATOR_ROLES.join(', ')}`);
  }
  if (input.description !== undefined && input.description.length > LIMITS.MAX_DESCRIPTION_CHARS) {
    throw new FleetJobsError('InvalidRequest', `description is longer than ${LIMITS.MAX_DESCRIPTION_CHARS}`);
  }
  const { fields, secret } = await newKeyFields(masterKey, input.tenantId, input.role, input.description);
  return created(await insertOperatorKey(deps.db, fields, deps.clock()), secret);
}

/** The admin key of a store that has never had a key; undefined otherwise. Safe with instances racing. */
export async function bootstrapAdminKey(
  deps: ServiceDeps,
  masterKey: Buffer,
): Promise<CreatedOperatorKey | undefined> {
  // Every start but the first finds a key: it skips the scrypt hash of a key it would not insert (~1 s here).
  if ((await selectOperatorKeys(deps.db, undefined, 1)).length > 0) return undefined;
  const { fields, secret } = await newKeyFields(
    masterKey,
    DEFAULT_TENANT_ID,
    'admin',
    'created by the first serve',
  );
  const row = await deps.db.transaction(async (tx) => {
    await lockOperatorKeys(tx);
    return insertFirstOperatorKey(tx, fields, deps.clock());
  });
  return row && created(row, secret);
}

/**
 * True when the master key reproduces the secret of an ACTIVE key (or no key exists): a different master key
 * would refuse every operator, which start-up reports instead of leaving it to a stream of 401s.
 */
export async function masterKeyMatchesStore(deps: ServiceDeps, masterKey: Buffer): Promise<boolean> {
  const rows = await selectOperatorKeys(deps.db, undefined, 50);
  const active = rows.find((r) => r.status === 'ACTIVE');
  if (active === undefined) return true;
  return verifySecret(
    deriveOperatorSecret(masterKey, active.accessKeyId, active.secretSalt),
    active.secretCheck,
  );
}

export async function listOperatorKeys(
  deps: ServiceDeps,
  page: { nextToken?: string | undefined; maxResults?: number | undefined },
): Promise<{ keys: OperatorKeyView[]; nextToken?: string }> {
  const limit = page.maxResults ?? LIMITS.DEFAULT_LIST_RESULTS;
  if (page.nextToken !== undefined && !ACCESS_KEY_ID_PATTERN.test(page.nextToken)) {
    throw new FleetJobsError(
      'InvalidRequest',
      'nextToken is not one this API returned; omit it to start over',
    );
  }
  const rows = await selectOperatorKeys(deps.db, page.nextToken, limit + 1);
  const keys = rows.slice(0, limit).map(view);
  return rows.length > limit ? { keys, nextToken: keys.at(-1)?.accessKeyId as string } : { keys };
}

export async function revokeOperatorKeyById(
  deps: ServiceDeps,
  accessKeyId: string,
): Promise<OperatorKeyView> {
  const row = await deps.db.transaction(async (tx) => {
    await lockOperatorKeys(tx);
    return revokeOperatorKey(tx, accessKeyId, deps.clock());
  });
  if (row) return view(row);
  const existing = ACCESS_KEY_ID_PATTERN.test(accessKeyId)
    ? await selectOperatorKey(deps.db, accessKeyId)
    : undefined;
  if (existing === undefined)
    throw new FleetJobsError('ResourceNotFound', `operator key ${accessKeyId} does not exist`);
  if (existing.status === 'REVOKED') {
    throw new FleetJobsError('InvalidStateTransition', `operator key ${accessKeyId} is already revoked`);
  }
  throw new FleetJobsError(
    'InvalidStateTransition',
    `operator key ${accessKeyId} is the last active admin key; create another admin key first`,
  );
}

export interface OperatorKeyResolver {
  /** The principal of `Authorization: Bearer <id>.<secret>`, or undefined. */
  byBearer(token: string): Promise<OperatorPrincipal | undefined>;
  /** The secret of an ACTIVE key, for SigV4 verification, or undefined. */
  secretFor(accessKeyId: string): Promise<{ principal: OperatorPrincipal; secret: string } | undefined>;
}

/** Reads the key row on every request (one primary-key lookup), so a revocation takes effect at once. */
export function createOperatorKeyResolver(
  deps: Pick<ServiceDeps, 'db'>,
  masterKey: Buffer,
): OperatorKeyResolver {
  const secretFor = async (accessKeyId: string) => {
    if (!ACCESS_KEY_ID_PATTERN.test(accessKeyId)) return undefined;
    const row = await selectOperatorKey(deps.db, accessKeyId);
    if (row === undefined || row.status !== 'ACTIVE') return undefined;
    return {
      principal: { accessKeyId: row.accessKeyId, role: row.role, tenantId: row.tenantId },
      secret: deriveOperatorSecret(masterKey, row.accessKeyId, row.secretSalt),
    };
  };
  return {
    secretFor,
    async byBearer(token) {
      const dot = token.indexOf('.');
      if (dot < 0 || token.length > LIMITS.MAX_SECRET_CHARS) return undefined;
      const found = await secretFor(token.slice(0, dot));
      if (found === undefined || !safeEqual(found.secret, token.slice(dot + 1))) return undefined;
      return found.principal;
    },
  };
}
