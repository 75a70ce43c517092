import { randomBytes } from 'node:crypto';
import { createPgliteDb, createPostgresDb, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { trackClosed, trackOpen } from './open-resources.js';
import { pgliteSnapshot } from './pglite-snapshot.js';

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

export interface TestDbOptions {
  /** Pool size on PostgreSQL (default 10). */
  max?: number;
}

/**
 * A fresh, migrated database for one test file: a schema of its own in the test database on PostgreSQL (dropped
 * on close), or an in-memory PGlite loaded from a migrated snapshot (test/helpers/pglite-snapshot.ts). Files run
 * in parallel without seeing each other's rows.
 */
export async function createTestDb(backend: Backend, options: TestDbOptions = {}): Promise<TestDb> {
  const t = await openTestDb(backend, options);
  const close = t.close;
  const opened = callerOf(new Error().stack);
  trackOpen(t, `a ${backend} test database (createTestDb${opened})`);
  return {
    ...t,
    async close() {
      await close();
      trackClosed(t);
    },
  };
}

/** Where a test file called a helper: the first stack frame in a .test.ts file. */
function callerOf(stack: string | undefined): string {
  const frame = stack?.split('\n').find((line) => line.includes('.test.ts'));
  const at = frame?.match(/\(?([^()\s]+\.test\.ts:\d+):\d+\)?$/)?.[1];
  return at === undefined ? '' : ` at ${at.replace(/^.*\/test\//, 'test/')}`;
}

async function openTestDb(backend: Backend, options: TestDbOptions): Promise<TestDb> {
  if (backend === 'pglite') {
    const db = await createPgliteDb({ loadDataDir: await pgliteSnapshot() });
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
