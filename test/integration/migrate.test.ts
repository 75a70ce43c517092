import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { createPostgresDb } from '../../src/store/db.js';
import { loadMigrations, migrate, migrationStatus } from '../../src/store/migrate.js';

describe.each(BACKENDS)('migrations on %s', (backend) => {
  let t: TestDb | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('records every migration once and applies nothing the second time', async () => {
    t = await createTestDb(backend);
    const all = await loadMigrations();
    const rows = await t.db.query<{ id: number; name: string }>(
      'SELECT id, name FROM fleetjobs_migrations ORDER BY id',
    );
    expect(rows.map((r) => r.name)).toEqual(all.map((m) => m.name));
    expect(await migrate(t.db)).toEqual({ applied: [], current: all.at(-1)?.id });
    expect(await migrationStatus(t.db)).toEqual({ current: all.at(-1)?.id, expected: all.at(-1)?.id });
  });

  it('applies a migration a current-looking database has not recorded, and only that one', async () => {
    t = await createTestDb(backend);
    const all = await loadMigrations();
    const next = (all.at(-1)?.id ?? 0) + 1;
    const extra = { id: next, name: `${next}_extra.sql`, sql: 'CREATE TABLE migrate_extra (id int)' };
    expect(await migrate(t.db, [...all, extra])).toEqual({ applied: [extra.name], current: next });
    expect(await t.db.query('SELECT id FROM migrate_extra')).toEqual([]);
    expect(await migrate(t.db, [...all, extra])).toEqual({ applied: [], current: next });
    expect(await migrationStatus(t.db)).toEqual({ current: next, expected: all.at(-1)?.id });
  });

  it('refuses a database migrated by a newer fleetjobs', async () => {
    t = await createTestDb(backend);
    await t.db.query(`INSERT INTO fleetjobs_migrations (id, name) VALUES (9999, '9999_future.sql')`);
    await expect(migrate(t.db)).rejects.toThrow(
      /at migration 9999 but this fleetjobs knows only up to \d+; upgrade/,
    );
  });
});

describe('concurrent migration on PostgreSQL', () => {
  it.skipIf(!BACKENDS.includes('postgres'))(
    'migrates once when several instances start together',
    async () => {
      const t = await createTestDb('postgres');
      const url = t.url as string;
      const schema = `${t.schema as string}_fresh`;
      await t.db.query(`CREATE SCHEMA ${schema}`);
      const dbs = Array.from({ length: 3 }, () => createPostgresDb({ url, schema, max: 1 }));
      try {
        const results = await Promise.all(dbs.map((db) => migrate(db)));
        const applied = results.flatMap((r) => r.applied);
        expect(applied).toEqual((await loadMigrations()).map((m) => m.name));
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
        await t.db.query(`DROP SCHEMA ${schema} CASCADE`);
        await t.close();
      }
    },
  );
});
