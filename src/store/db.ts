import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import postgres from 'postgres';
import type { PGlite as PGliteType } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.js';

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

/**
 * Thrown by the store when PostgreSQL cannot be reached or a connection died under a statement. The request that
 * met it may or may not have been applied (a COMMIT in flight); it is never retried here.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

const CONNECTION_ERRORS = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // admin_shutdown (pg_terminate_backend, a restart), crash_shutdown, cannot_connect_now (starting up)
  '57P01',
  '57P02',
  '57P03',
  // idle_in_transaction_session_timeout
  '25P03',
]);

export function isStoreUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const code = pgErrorCode(err);
  return code !== undefined && CONNECTION_ERRORS.has(code);
}

function unavailable(err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const code = pgErrorCode(err);
  return new StoreUnavailableError(`the database is not reachable (${code ?? String(err)})`, { cause: err });
}

/** Limits that keep a dead or blackholed database from holding requests, transactions and workers forever. */
export interface PostgresTimeouts {
  /** statement_timeout: the server cancels a statement that runs longer (a lock wait, a runaway query). */
  statementMs: number;
  /** idle_in_transaction_session_timeout: the server ends a session left idle inside a transaction. */
  idleInTransactionMs: number;
  /** Opening a connection (TCP, TLS, authentication) takes at most this. */
  connectMs: number;
  /** TCP keepalive on idle connections. */
  keepAliveMs: number;
  /**
   * A statement unanswered this long makes the pool check the server on a fresh connection; when that fails too
   * (refused, blackholed), every connection is dropped, so what waits on them fails now instead of at the
   * kernel's TCP timeout (minutes). Bounds how long a request waits on a database that went away.
   */
  unansweredMs: number;
}

export const DEFAULT_POSTGRES_TIMEOUTS: PostgresTimeouts = {
  statementMs: 30_000,
  idleInTransactionMs: 60_000,
  connectMs: 5_000,
  keepAliveMs: 10_000,
  unansweredMs: 1_500,
};

export interface PostgresOptions {
  url: string;
  max?: number;
  /** Schema to put first on the search_path (tests use one schema per file). */
  schema?: string;
  /** application_name of every connection (default fleetjobs), as pg_stat_activity shows it. */
  applicationName?: string;
  timeouts?: Partial<PostgresTimeouts>;
  onnotice?: (notice: unknown) => void;
}

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms))),
  ]).finally(() => clearTimeout(timer));
}

export function createPostgresDb(options: PostgresOptions): Db {
  const timeouts = { ...DEFAULT_POSTGRES_TIMEOUTS, ...options.timeouts };
  // Longer than any statement the server lets run: past it, the connection is dead, not busy.
  const deadlineMs = timeouts.statementMs + timeouts.unansweredMs;
  /** Every open socket of the pool, with when it last heard from the server. */
  const sockets = new Map<net.Socket, { heardAt: number }>();
  const connectionOptions = (max: number): postgres.Options<Record<string, never>> => ({
    max,
    types: { int8 } as never,
    onnotice: options.onnotice ?? (() => {}),
    connection: {
      application_name: options.applicationName ?? 'fleetjobs',
      statement_timeout: timeouts.statementMs,
      idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
      // Every statement here is short, but the set-based ones over unnest() arrays are estimated at hundreds of
      // thousands of rows: JIT then compiled them, 200-400 ms per call where the work itself took 50 ms.
      jit: 'off',
      ...(options.schema ? { search_path: options.schema } : {}),
    } as never,
    idle_timeout: 60,
    connect_timeout: Math.max(1, Math.ceil(timeouts.connectMs / 1000)),
    keep_alive: Math.max(1, Math.round(timeouts.keepAliveMs / 1000)),
    // Seconds before reconnecting after failed attempts; postgres.js's default grows to 20 s, which requests
    // queued for a connection would wait out after the database came back.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
  });
  const sql = postgres(options.url, {
    ...connectionOptions(options.max ?? 10),
    // Our own sockets, so that connections whose server went silent can be dropped (see unansweredMs).
    socket: ({ host, port, path }: { host: string[]; port: number[]; path?: string | false }) => {
      const socket = path ? net.connect(path) : net.connect(port[0] ?? 5432, host[0] ?? 'localhost');
      socket.setNoDelay(true);
      const state = { heardAt: performance.now() };
      sockets.set(socket, state);
      socket.on('data', () => (state.heardAt = performance.now()));
      socket.once('close', () => sockets.delete(socket));
      return socket;
    },
  } as postgres.Options<Record<string, never>>);

  interface Pending {
    since: number;
    /** Statements get a deadline; a whole transaction (which may wait on other work) only counts as waiting. */
    fail?: (err: StoreUnavailableError) => void;
  }
  const pending = new Set<Pending>();
  let checking = false;
  let closed = false;
  let typesKnown = false;
  const reachable = async (): Promise<boolean> => {
    const probe = postgres(options.url, { ...connectionOptions(1), fetch_types: false });
    const startedAt = performance.now();
    let answered = false;
    const answer = probe.unsafe('select 1').then(() => (answered = true));
    try {
      if ((await within(answer, timeouts.unansweredMs)) !== 'timeout') return true;
      // A slow answer is not a dead server: on a busy machine or database a fresh connection can take longer
      // than unansweredMs, and after an event-loop stall the timer fires before the reply already received is
      // read. Let pending I/O be read first; a server that answered any connection meanwhile is alive.
      await new Promise((resolve) => setImmediate(resolve));
      if (answered) return true;
      for (const state of sockets.values()) if (state.heardAt > startedAt) return true;
      return false;
    } catch {
      return false;
    } finally {
      void probe.end({ timeout: 0 }).catch(() => undefined);
    }
  };
  const watchdog = setInterval(
    () => {
      if (closed) return;
      const now = performance.now();
      let oldest = now;
      let overdue = false;
      for (const p of pending) {
        if (p.since < oldest) oldest = p.since;
        if (p.fail !== undefined && now - p.since > deadlineMs) {
          overdue = true;
          pending.delete(p);
          p.fail(new StoreUnavailableError(`the database did not answer within ${deadlineMs} ms`));
        }
      }
      // A statement unanswered past statement_timeout means its connection is dead even if the server is not
      // (one dropped flow): drop every connection that has been silent as long.
      if (overdue) {
        for (const [socket, state] of sockets) if (now - state.heardAt > deadlineMs) socket.destroy();
      }
      if (checking || now - oldest < timeouts.unansweredMs) return;
      // Waiting a while: is the server there at all? If a fresh connection fails too, every connection is dead.
      checking = true;
      void reachable().then((ok) => {
        checking = false;
        if (ok || closed) return;
        for (const socket of sockets.keys()) socket.destroy();
      });
    },
    Math.max(50, Math.round(timeouts.unansweredMs / 4)),
  );
  watchdog.unref();

  /** A transaction whose connection is known dead: its body must not touch it again, the caller is told now. */
  interface TxState {
    gone: boolean;
    abort(err: StoreUnavailableError): void;
  }
  const track = <T>(p: Promise<T>, tx?: TxState, deadline = true): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let settled = false;
      const entry: Pending = { since: performance.now() };
      const settle = () => {
        if (settled) return false;
        settled = true;
        pending.delete(entry);
        return true;
      };
      const fail = (err: unknown) => {
        if (!settle()) return;
        const e = isStoreUnavailable(err) ? unavailable(err) : err;
        if (e instanceof StoreUnavailableError && tx !== undefined && !tx.gone) {
          tx.gone = true;
          tx.abort(e);
        }
        reject(e);
      };
      if (deadline) entry.fail = fail;
      pending.add(entry);
      p.then((v) => {
        if (!typesKnown) {
          // The array types are in the shared parsers now. postgres.js fetches them again on every new connection
          // and leaves that query's rejection unhandled when the connection dies meanwhile (a crash under
          // --unhandled-rejections=throw, Node's default): reconnects during an outage must not fetch them.
          typesKnown = true;
          (sql.options as { fetch_types: boolean }).fetch_types = false;
        }
        if (settle()) resolve(v);
      }, fail);
    });
  const wrap = (runner: postgres.Sql | postgres.TransactionSql, tx?: TxState): Queryable => ({
    async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
      // postgres.js 3.4.9 writes to a null socket if a closed transaction connection is used again (#1168).
      if (tx?.gone) throw new StoreUnavailableError('the database connection of this transaction closed');
      const rows = await track(
        runner.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }),
        tx,
      );
      return rows.map((r) => camelRow(r as Record<string, unknown>)) as R[];
    },
    async exec(script: string): Promise<void> {
      if (tx?.gone) throw new StoreUnavailableError('the database connection of this transaction closed');
      // Scripts (migrations) may run past statement_timeout's deadline; they only count as waiting.
      await track(runner.unsafe(script), tx, false);
    },
  });
  const root = wrap(sql);
  return {
    kind: 'postgres',
    // A statement outside a transaction commits alone: a deadlock or serialization failure rolled all of it back, so
    // it is retried as a transaction is.
    query: <R>(text: string, params?: readonly unknown[]) => withRetry(() => root.query<R>(text, params)),
    exec: root.exec,
    // sql.begin, not sql.reserve(): in postgres.js 3.4.9 a reserved connection whose server side closed poisons
    // the pool when released (porsager/postgres#1199), and a reserve waiting for a connection that closes never
    // settles (#1195). Under a database outage that left transactions, the dispatcher and sweeps waiting forever.
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      withRetry(async () => {
        let abort: (err: StoreUnavailableError) => void = () => {};
        const aborted = new Promise<never>((_, reject) => (abort = reject));
        const state: TxState = { gone: false, abort: (err) => abort(err) };
        // Once the connection is gone postgres.js must not be asked for ROLLBACK or COMMIT (#1168); the caller
        // already has the error, and the body is left unsettled for the garbage collector.
        const body = (tx: postgres.TransactionSql): Promise<T> =>
          fn(wrap(tx, state)).then(
            (result) => (state.gone ? never<T>() : result),
            (err: unknown) => {
              if (state.gone) return never<T>();
              throw err;
            },
          );
        try {
          return await Promise.race([track(sql.begin(body) as Promise<T>, undefined, false), aborted]);
        } catch (err) {
          state.gone = true;
          throw isStoreUnavailable(err) ? unavailable(err) : err;
        }
      }),
    close: async () => {
      closed = true;
      clearInterval(watchdog);
      await sql.end({ timeout: 5 });
    },
  };
}

/** A promise that never settles: a transaction body whose connection died is left for the garbage collector. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
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

type WasmModule = NonNullable<NonNullable<Parameters<typeof PGliteType.create>[1]>['pgliteWasmModule']>;

/** Node's WebAssembly global; its TypeScript declarations are in the DOM lib, which this project does not load. */
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } })
  .WebAssembly;

interface PgliteRuntime {
  PGlite: typeof PGliteType;
  pgliteWasmModule: WasmModule;
  initdbWasmModule: WasmModule;
}

let pgliteRuntime: Promise<PgliteRuntime> | undefined;

/**
 * PGlite's module and its two WebAssembly binaries, compiled once per process. The compiling runs on V8's
 * background threads, so `serve` starts it before loading its own modules, which the main thread does meanwhile.
 */
export function loadPglite(): Promise<PgliteRuntime> {
  pgliteRuntime ??= (async () => {
    const resolve = createRequire(import.meta.url).resolve;
    const compile = async (file: string) =>
      wasm.compile(await readFile(resolve(`@electric-sql/pglite/${file}`)));
    const [{ PGlite }, pgliteWasmModule, initdbWasmModule] = await Promise.all([
      import('@electric-sql/pglite'),
      compile('pglite.wasm'),
      compile('initdb.wasm'),
    ]);
    return { PGlite, pgliteWasmModule, initdbWasmModule };
  })();
  // A failure is not kept: the next database opened tries again.
  pgliteRuntime.catch(() => (pgliteRuntime = undefined));
  return pgliteRuntime;
}

export async function createPgliteDb(options: PgliteOptions = {}): Promise<PgliteDb> {
  const { PGlite, pgliteWasmModule, initdbWasmModule } = await loadPglite();
  // memory:// and idb:// stores belong to their process.
  const dir = options.dataDir;
  const unlock = dir !== undefined && !dir.includes('://') ? lockDataDir(dir) : () => undefined;
  let pg: PGliteType;
  try {
    pg = await PGlite.create(options.dataDir ?? 'memory://', {
      pgliteWasmModule,
      initdbWasmModule,
      parsers: { 20: (v: string) => Number(v) },
      ...(options.loadDataDir === undefined ? {} : { loadDataDir: options.loadDataDir }),
    });
  } catch (err) {
    unlock();
    throw err;
  }
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
    close: async () => {
      try {
        await pg.close();
      } finally {
        unlock();
      }
    },
  };
}

/** The role and setting the row-level security policies of migration 0008 check. */
const TENANT_SETUP = `SELECT set_config('role', 'fleetjobs_tenant', true), set_config('fleetjobs.tenant_id', $1, true)`;

/**
 * The store as one tenant sees it: every statement runs in a transaction that first switches to the role
 * fleetjobs_tenant and sets fleetjobs.tenant_id, both transaction-local, so row-level security (migration 0008)
 * keeps it to the tenant's rows whatever the statement's WHERE says, and a pooled connection carries neither
 * into its next use. `tenant` is asked at each transaction (the HTTP layer answers from the request); when it
 * throws, nothing runs. The setting is sent with the transaction's first statement, not in a round trip of its
 * own. The pool stays the system db's: close does nothing.
 */
export function tenantDb(db: Db, tenant: () => string): Db {
  const transaction = <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    const tenantId = tenant();
    return db.transaction(async (tx) => {
      if (db.kind === 'pglite') {
        await tx.query(TENANT_SETUP, [tenantId]);
        return fn(tx);
      }
      const [, result] = await Promise.all([tx.query(TENANT_SETUP, [tenantId]), fn(tx)]);
      return result;
    });
  };
  return {
    kind: db.kind,
    transaction,
    query: <R>(text: string, params?: readonly unknown[]) => transaction((tx) => tx.query<R>(text, params)),
    exec: (script) => transaction((tx) => tx.exec(script)),
    close: async () => {},
  };
}
