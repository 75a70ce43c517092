import { randomBytes } from 'node:crypto';
import { createPgliteDb, createPostgresDb, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';

export type Backend = 'postgres' | 'pglite';

/** The real PostgreSQL the suite runs against (CI starts it; see .ci/run). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Every integration suite runs on both stores; FLEETJOBS_TEST_BACKENDS=postgres narrows it. */
export const BACKENDS: Backend[] = (process.env.FLEETJOBS_TEST_BACKENDS ?? 'postgres,pglite')
  .split(',')
  .filter((b): b is Backend => b === 'postgres' || b === 'pglite');

export interface TestDb {
  db: Db;
  backend: Backend;
  /** The PostgreSQL schema (postgres backend only), for a second connection such as another server instance. */
  schema?: string;
  url?: string;
  close(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: a schema of its own in the test database on PostgreSQL (dropped
 * on close), or an in-memory PGlite. Files run in parallel without seeing each other's rows.
 */
export async function createTestDb(backend: Backend, options: { max?: number } = {}): Promise<TestDb> {
  if (backend === 'pglite') {
    const db = await createPgliteDb();
    await migrate(db);
    return { db, backend, close: () => db.close() };
  }
  const schema = `fj_test_${randomBytes(6).toString('hex')}`;
  const admin = createPostgresDb({ url: TEST_DATABASE_URL, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const db = createPostgresDb({ url: TEST_DATABASE_URL, schema, max: options.max ?? 10 });
  await migrate(db);
  return {
    db,
    backend,
    schema,
    url: TEST_DATABASE_URL,
    async close() {
      await db.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

/** Counts every statement a Db runs, to prove that an operation is set-based. */
export function countingDb(db: Db): { db: Db; count: () => number; reset: () => void } {
  let n = 0;
  const wrap = <Q extends { query: Db['query']; exec: Db['exec'] }>(q: Q): Q => ({
    ...q,
    query: (text: string, params?: readonly unknown[]) => {
      n++;
      return q.query(text, params);
    },
    exec: (script: string) => {
      n++;
      return q.exec(script);
    },
  });
  const counted: Db = {
    ...wrap(db),
    kind: db.kind,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
  return { db: counted, count: () => n, reset: () => (n = 0) };
}
