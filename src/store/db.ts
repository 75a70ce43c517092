import postgres from 'postgres';
import type { PGlite as PGliteType } from '@electric-sql/pglite';

/**
 * The one small query interface the store is written against. Two implementations run the same SQL:
 * postgres.js for PostgreSQL and PGlite for the embedded default. Rows come back with camelCase keys
 * (top-level columns only: jsonb values such as job documents are left exactly as stored), int8 as number
 * and timestamptz as Date.
 */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction; retried on deadlock and serialization failure, so fn must be idempotent. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const RETRYABLE = new Set(['40001', '40P01']);
const MAX_TX_ATTEMPTS = 5;

export function camelCase(column: string): string {
  return column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const keyCache = new Map<string, string>();
function camelRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in row) {
    let k = keyCache.get(key);
    if (k === undefined) {
      k = camelCase(key);
      keyCache.set(key, k);
    }
    out[k] = row[key];
  }
  return out;
}

export function pgErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

async function withRetry<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const code = pgErrorCode(err);
      if (i >= MAX_TX_ATTEMPTS || code === undefined || !RETRYABLE.has(code)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * i));
    }
  }
}

// PostgreSQL sends int8 and numeric as text; every int8 we store (counts, versions, sequences) fits a double.
const int8 = { to: 20, from: [20], serialize: (v: unknown) => String(v), parse: (v: string) => Number(v) };

export interface PostgresOptions {
  url: string;
  max?: number;
  /** Schema to put first on the search_path (tests use one schema per file). */
  schema?: string;
  onnotice?: (notice: unknown) => void;
}

export function createPostgresDb(options: PostgresOptions): Db {
  const sql = postgres(options.url, {
    max: options.max ?? 10,
    types: { int8 } as never,
    onnotice: options.onnotice ?? (() => {}),
    connection: options.schema ? { search_path: options.schema } : {},
    idle_timeout: 60,
  });
  const wrap = (runner: postgres.Sql | postgres.TransactionSql): Queryable => ({
    async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
      const rows = await runner.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
      return rows.map((r) => camelRow(r as Record<string, unknown>)) as R[];
    },
    async exec(script: string): Promise<void> {
      await runner.unsafe(script);
    },
  });
  const root = wrap(sql);
  return {
    kind: 'postgres',
    query: root.query,
    exec: root.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      withRetry(async () => {
        const conn = await sql.reserve();
        // BEGIN leaves in the same flight as the first statements instead of taking a round trip of its own
        // (sql.begin awaits it): on the device path that is one round trip in five.
        const begun = conn.unsafe('begin').then(
          () => undefined,
          (err: unknown) => ({ err }),
        );
        try {
          const result = await fn(wrap(conn));
          const failed = await begun;
          if (failed !== undefined) throw failed.err;
          await conn.unsafe('commit');
          return result;
        } catch (err) {
          await begun;
          await conn.unsafe('rollback').catch(() => undefined);
          throw err;
        } finally {
          conn.release();
        }
      }),
    close: () => sql.end({ timeout: 5 }),
  };
}

export interface PgliteOptions {
  /** Directory for the database files; undefined keeps it in memory. */
  dataDir?: string;
  /** A data directory saved by PGlite's dumpDataDir to start from instead of an empty database. */
  loadDataDir?: Blob;
}

export interface PgliteDb extends Db {
  /** The data directory as an uncompressed tarball, for loadDataDir. */
  dumpDataDir(): Promise<Blob>;
}

export async function createPgliteDb(options: PgliteOptions = {}): Promise<PgliteDb> {
  const { PGlite } = await import('@electric-sql/pglite');
  const pg: PGliteType = await PGlite.create(options.dataDir ?? 'memory://', {
    parsers: { 20: (v: string) => Number(v) },
    ...(options.loadDataDir === undefined ? {} : { loadDataDir: options.loadDataDir }),
  });
  const wrap = (runner: Pick<PGliteType, 'query' | 'exec'>): Queryable => ({
    async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
      const res = await runner.query<Record<string, unknown>>(text, params as unknown[]);
      return res.rows.map(camelRow) as R[];
    },
    async exec(script: string): Promise<void> {
      await runner.exec(script);
    },
  });
  const root = wrap(pg);
  return {
    kind: 'pglite',
    dumpDataDir: () => pg.dumpDataDir('none'),
    query: root.query,
    exec: root.exec,
    // PGlite is one connection: a transaction holds it, so other queries wait and nothing can deadlock.
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx))),
    close: () => pg.close(),
  };
}
