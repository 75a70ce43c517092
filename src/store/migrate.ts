import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pgErrorCode, type Db } from './db.js';

/** An arbitrary constant: the advisory lock key every instance takes while migrating. */
const MIGRATION_LOCK_KEY = 7_346_201_551;

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/** The package root holds migrations/ both when run from source (src/store) and when built (dist/src/store). */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations')))
      return join(dir, 'migrations');
    const parent = dirname(dir);
    if (parent === dir) throw new Error('migrations/ not found beside package.json');
    dir = parent;
  }
}

export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (name) => ({
      id: Number(name.slice(0, 4)),
      name,
      sql: await readFile(join(dir, name), 'utf8'),
    })),
  );
}

export interface MigrationResult {
  applied: string[];
  current: number;
}

/** The ids recorded in the database, or undefined before the first migration made the table. */
async function recordedIds(db: Db): Promise<number[] | undefined> {
  try {
    const rows = await db.query<{ ids: number[] | null }>(
      'SELECT array_agg(id ORDER BY id) AS ids FROM fleetjobs_migrations',
    );
    return rows[0]?.ids ?? [];
  } catch (err) {
    if (pgErrorCode(err) === '42P01') return undefined;
    throw err;
  }
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so concurrent instances starting
 * together migrate once. Refuses to run against a database migrated by a newer fleetjobs.
 */
export async function migrate(db: Db, migrations?: Migration[]): Promise<MigrationResult> {
  const all = migrations ?? (await loadMigrations());
  const latest = all.at(-1)?.id ?? 0;
  // Every start after the first finds the schema current: one read says so, without the lock or a transaction.
  const recorded = await recordedIds(db);
  if (recorded?.length === all.length && recorded.every((id, i) => id === all[i]?.id)) {
    return { applied: [], current: latest };
  }
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS fleetjobs_migrations (
      id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const rows = await tx.query<{ id: number }>('SELECT id FROM fleetjobs_migrations ORDER BY id');
    const done = new Set(rows.map((r) => r.id));
    const newest = rows.at(-1)?.id ?? 0;
    if (newest > latest) {
      throw new Error(
        `the database is at migration ${newest} but this fleetjobs knows only up to ${latest}; upgrade fleetjobs`,
      );
    }
    const applied: string[] = [];
    for (const m of all) {
      if (done.has(m.id)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO fleetjobs_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      applied.push(m.name);
    }
    return { applied, current: latest };
  });
}

let expectedMigration: Promise<number> | undefined;

/** For /readyz: is the database at exactly the migration this code expects? */
export async function migrationStatus(db: Db): Promise<{ current: number; expected: number }> {
  // The files do not change while the process runs: read them once, not on every probe.
  expectedMigration ??= loadMigrations().then((all) => all.at(-1)?.id ?? 0);
  const expected = await expectedMigration;
  const rows = await db.query<{ id: number | null }>('SELECT max(id) AS id FROM fleetjobs_migrations');
  return { current: rows[0]?.id ?? 0, expected };
}
