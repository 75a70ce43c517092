import type { Queryable } from './db.js';

export type OperatorRole = 'admin' | 'operator' | 'viewer';

/** An operator API key as stored: no secret, only the salt it is derived with and a scrypt hash of it. */
export interface OperatorKeyRow {
  accessKeyId: string;
  tenantId: string;
  role: OperatorRole;
  description: string | null;
  secretSalt: string;
  secretCheck: string;
  status: 'ACTIVE' | 'REVOKED';
  createdAt: Date;
  revokedAt: Date | null;
}

const COLUMNS =
  'access_key_id, tenant_id, role, description, secret_salt, secret_check, status, created_at, revoked_at';
/** An arbitrary constant: serialises admin-key bootstrap and admin revocation across instances. */
const OPERATOR_KEYS_LOCK = 7_346_201_552;

export async function lockOperatorKeys(db: Queryable): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock($1)', [OPERATOR_KEYS_LOCK]);
}

export async function insertOperatorKey(
  db: Queryable,
  key: Pick<
    OperatorKeyRow,
    'accessKeyId' | 'tenantId' | 'role' | 'description' | 'secretSalt' | 'secretCheck'
  >,
  now: Date,
): Promise<OperatorKeyRow> {
  const rows = await db.query<OperatorKeyRow>(
    `INSERT INTO operator_keys (access_key_id, tenant_id, role, description, secret_salt, secret_check, status,
       created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7) RETURNING ${COLUMNS}`,
    [key.accessKeyId, key.tenantId, key.role, key.description, key.secretSalt, key.secretCheck, now],
  );
  return rows[0] as OperatorKeyRow;
}

/**
 * The first key of an empty store, the default tenant's; undefined when any key, active or revoked, exists. Run
 * under lockOperatorKeys.
 */
export async function insertFirstOperatorKey(
  db: Queryable,
  key: Pick<OperatorKeyRow, 'accessKeyId' | 'role' | 'description' | 'secretSalt' | 'secretCheck'>,
  now: Date,
): Promise<OperatorKeyRow | undefined> {
  const rows = await db.query<OperatorKeyRow>(
    `INSERT INTO operator_keys (access_key_id, tenant_id, role, description, secret_salt, secret_check, status,
       created_at)
     SELECT $1, 'default', $2, $3, $4, $5, 'ACTIVE', $6 WHERE NOT EXISTS (SELECT 1 FROM operator_keys)
     RETURNING ${COLUMNS}`,
    [key.accessKeyId, key.role, key.description, key.secretSalt, key.secretCheck, now],
  );
  return rows[0];
}

export async function selectOperatorKey(
  db: Queryable,
  accessKeyId: string,
): Promise<OperatorKeyRow | undefined> {
  const rows = await db.query<OperatorKeyRow>(
    `SELECT ${COLUMNS} FROM operator_keys WHERE access_key_id = $1`,
    [accessKeyId],
  );
  return rows[0];
}

/** One page in creation order, after the key named by `after` (the page token). */
export async function selectOperatorKeys(
  db: Queryable,
  after: string | undefined,
  limit: number,
): Promise<OperatorKeyRow[]> {
  return db.query<OperatorKeyRow>(
    `SELECT ${COLUMNS} FROM operator_keys WHERE ($1::text IS NULL OR access_key_id > $1)
     ORDER BY access_key_id LIMIT $2`,
    [after ?? null, limit],
  );
}

/**
 * Revokes an ACTIVE key, unless it is the last ACTIVE admin key of its tenant (that would lock the tenant's
 * operators out). Run under lockOperatorKeys so two admins cannot revoke each other at once.
 */
export async function revokeOperatorKey(
  db: Queryable,
  accessKeyId: string,
  now: Date,
): Promise<OperatorKeyRow | undefined> {
  const rows = await db.query<OperatorKeyRow>(
    `UPDATE operator_keys SET status = 'REVOKED', revoked_at = $2
     WHERE access_key_id = $1 AND status = 'ACTIVE'
       AND (role <> 'admin' OR EXISTS (SELECT 1 FROM operator_keys o
            WHERE o.tenant_id = operator_keys.tenant_id AND o.role = 'admin' AND o.status = 'ACTIVE'
              AND o.access_key_id <> $1))
     RETURNING ${COLUMNS}`,
    [accessKeyId, now],
  );
  return rows[0];
}
