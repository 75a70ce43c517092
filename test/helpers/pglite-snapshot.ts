import { createHash, randomBytes } from 'node:crypto';
import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createPgliteDb } from '../../src/store/db.js';
import { loadMigrations, migrate, migrationsDir } from '../../src/store/migrate.js';

/**
 * A fresh PGlite costs an initdb inside WebAssembly (seconds on a loaded machine); loading a saved data
 * directory skips it. The snapshot is a PGlite migrated by migrate() itself, saved once under the temporary
 * directory and named after the migrations and the PGlite version, so a changed migration makes a new one.
 */
async function snapshotPath(): Promise<string> {
  const hash = createHash('sha256');
  const pglite = join(dirname(migrationsDir()), 'node_modules/@electric-sql/pglite/package.json');
  hash.update((JSON.parse(await readFile(pglite, 'utf8')) as { version: string }).version);
  for (const m of await loadMigrations()) hash.update(`\0${m.name}\0${m.sql}`);
  return join(tmpdir(), `fleetjobs-test-pglite-${hash.digest('hex').slice(0, 16)}.tar`);
}

/** Makes the snapshot unless it exists; parallel callers may both make it, the rename keeps one whole file. */
export async function ensurePgliteSnapshot(): Promise<string> {
  const path = await snapshotPath();
  try {
    await access(path);
    return path;
  } catch {
    const db = await createPgliteDb();
    try {
      await migrate(db);
      const tar = Buffer.from(await (await db.dumpDataDir()).arrayBuffer());
      const partial = `${path}.${randomBytes(4).toString('hex')}`;
      await writeFile(partial, tar);
      await rename(partial, path);
    } finally {
      await db.close();
    }
    return path;
  }
}

let cached: Promise<Blob> | undefined;

/** The migrated data directory, read once per test process. */
export function pgliteSnapshot(): Promise<Blob> {
  cached ??= ensurePgliteSnapshot().then(async (path) => new Blob([await readFile(path)]));
  return cached;
}
