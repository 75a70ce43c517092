import type { Queryable } from './db.js';

/** A per-thing MQTT secret, as stored: only its scrypt hash ([protocol §5], migrations/0003_security.sql). */
export interface ThingCredentialRow {
  credentialId: string;
  thingName: string;
  secretHash: string;
  status: 'ACTIVE' | 'REVOKED';
  createdAt: Date;
  revokedAt: Date | null;
}

const COLUMNS = 'credential_id, thing_name, secret_hash, status, created_at, revoked_at';

/** Row-locks the thing so that concurrent creates and rotations of its credentials apply one at a time. */
export async function lockThingForCredentials(db: Queryable, thingName: string): Promise<boolean> {
  const rows = await db.query(`SELECT thing_name FROM things WHERE thing_name = $1 FOR UPDATE`, [thingName]);
  return rows.length === 1;
}

/** Inserts an ACTIVE credential unless the thing already holds maxActive; undefined when it does. */
export async function insertThingCredential(
  db: Queryable,
  credential: { credentialId: string; thingName: string; secretHash: string },
  maxActive: number,
  now: Date,
): Promise<ThingCredentialRow | undefined> {
  const rows = await db.query<ThingCredentialRow>(
    `INSERT INTO thing_credentials (credential_id, thing_name, secret_hash, status, created_at)
     SELECT $1, $2, $3, 'ACTIVE', $4
     WHERE (SELECT count(*) FROM thing_credentials WHERE thing_name = $2 AND status = 'ACTIVE') < $5
     RETURNING ${COLUMNS}`,
    [credential.credentialId, credential.thingName, credential.secretHash, now, maxActive],
  );
  return rows[0];
}

/** Revokes one ACTIVE credential of a thing, or every one when credentialId is undefined; returns the ids. */
export async function revokeThingCredentials(
  db: Queryable,
  thingName: string,
  credentialId: string | undefined,
  now: Date,
): Promise<string[]> {
  const rows = await db.query<{ credentialId: string }>(
    `UPDATE thing_credentials SET status = 'REVOKED', revoked_at = $3
     WHERE thing_name = $1 AND status = 'ACTIVE' AND ($2::text IS NULL OR credential_id = $2)
     RETURNING credential_id`,
    [thingName, credentialId ?? null, now],
  );
  return rows.map((r) => r.credentialId);
}

export async function selectActiveThingCredentials(
  db: Queryable,
  thingName: string,
): Promise<Pick<ThingCredentialRow, 'credentialId' | 'secretHash'>[]> {
  return db.query(
    `SELECT credential_id, secret_hash FROM thing_credentials
     WHERE thing_name = $1 AND status = 'ACTIVE' ORDER BY created_at DESC`,
    [thingName],
  );
}

export async function selectThingCredentials(
  db: Queryable,
  thingName: string,
): Promise<ThingCredentialRow[]> {
  return db.query<ThingCredentialRow>(
    `SELECT ${COLUMNS} FROM thing_credentials WHERE thing_name = $1 ORDER BY created_at, credential_id`,
    [thingName],
  );
}
