/**
 * A child process that drives the store without MQTT (S2): devices' claim + complete as the service does it
 * (startNext, then updateExecution to SUCCEEDED with expectedVersion), or the very same SQL statements
 * replayed on raw postgres.js, recorded from a service run over an identical seed.
 */
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { serve } from './child.js';
import { encodeHistogram, newHistogram } from './hist.js';
import { processMeter, type ProcessUsage } from './metrics.js';
import { serviceDeps } from './db.js';
import { createPostgresDb, type Db, type Queryable } from '../../src/store/db.js';
import { startNext } from '../../src/service/start-next.js';
import { updateExecution } from '../../src/service/update-execution.js';

/** One transaction as the store ran it: its statements (index into Recording.texts) with their parameters. */
export type RecordedTxn = { text: number; params: unknown[] }[];

/** Each worker's transactions in order; statement texts are kept once (a replay has ~100k statements). */
export interface Recording {
  texts: string[];
  workers: RecordedTxn[][];
}

export interface ClaimCompleteArgs {
  url: string;
  schema: string;
  concurrency: number;
  thingNames: string[];
  mode: 'store' | 'replay';
  /** store mode: return every worker's transactions for a later replay. */
  record?: boolean;
  /** replay mode: the transactions of each worker, as recorded. */
  recording?: Recording;
}

export interface ClaimCompleteResult {
  pairs: number;
  transactions: number;
  elapsedMs: number;
  /** Per transaction (store: per service call). */
  histogram: string;
  doubleClaimed: number;
  duplicated: number;
  usage: ProcessUsage;
  recording?: Recording;
}

const meter = processMeter('store-driver');

/** Wraps a Db so that every statement is kept, grouped by transaction, for a replay. */
function recordingDb(db: Db, sink: RecordedTxn[], texts: Map<string, number>): Db {
  const intern = (text: string) => {
    let i = texts.get(text);
    if (i === undefined) texts.set(text, (i = texts.size));
    return i;
  };
  const recorder = (q: Queryable, txn: () => RecordedTxn): Queryable => ({
    query: (text, params = []) => {
      txn().push({ text: intern(text), params: [...params] });
      return q.query(text, params);
    },
    exec: (script) => {
      txn().push({ text: intern(script), params: [] });
      return q.exec(script);
    },
  });
  return {
    kind: db.kind,
    ...recorder(db, () => {
      const t: RecordedTxn = [];
      sink.push(t);
      return t;
    }),
    transaction: (fn) =>
      db.transaction((tx) => {
        // A retried transaction starts its record afresh: only the attempt that committed is replayed.
        const t: RecordedTxn = [];
        sink.push(t);
        return fn(recorder(tx, () => t)).then(
          (v) => v,
          (err: unknown) => {
            sink.splice(sink.indexOf(t), 1);
            throw err;
          },
        );
      }),
    close: () => db.close(),
  };
}

async function runStore(args: ClaimCompleteArgs): Promise<ClaimCompleteResult> {
  const base = createPostgresDb({ url: args.url, schema: args.schema, max: args.concurrency });
  const hist = newHistogram();
  const claimed = new Set<string>();
  const completed = new Set<string>();
  let doubleClaimed = 0;
  let duplicated = 0;
  let pairs = 0;
  let transactions = 0;
  const workers: RecordedTxn[][] = [];
  const texts = new Map<string, number>();
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    transactions++;
    return v;
  };
  // Warm the pool so that connection set-up is not measured.
  await Promise.all(Array.from({ length: args.concurrency }, () => base.query('SELECT 1')));
  meter.start();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: args.concurrency }, async (_, w) => {
      const sink: RecordedTxn[] = [];
      if (args.record) workers[w] = sink;
      const deps = serviceDeps(args.record ? recordingDb(base, sink, texts) : base);
      for (let i = w; i < args.thingNames.length; i += args.concurrency) {
        const thingName = args.thingNames[i] as string;
        for (;;) {
          const exec = await timed(() => startNext(deps, thingName, {}));
          if (exec === undefined) break;
          const key = `${thingName}/${exec.jobId}/${exec.executionNumber}`;
          if (claimed.has(key)) doubleClaimed++;
          claimed.add(key);
          await timed(() =>
            updateExecution(deps, {
              thingName,
              jobId: exec.jobId,
              status: 'SUCCEEDED',
              expectedVersion: exec.versionNumber,
            }),
          );
          if (completed.has(key)) duplicated++;
          completed.add(key);
          pairs++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const usage = meter.stop();
  await base.close();
  return {
    pairs,
    transactions,
    elapsedMs,
    histogram: encodeHistogram(hist),
    doubleClaimed,
    duplicated,
    usage,
    ...(args.record ? { recording: { texts: [...texts.keys()], workers } } : {}),
  };
}

// The store's own PostgreSQL settings (src/store/db.ts): int8 parsed as number, the schema on the search_path.
const int8 = { to: 20, from: [20], serialize: (v: unknown) => String(v), parse: (v: string) => Number(v) };

async function runReplay(args: ClaimCompleteArgs): Promise<ClaimCompleteResult> {
  const recording = args.recording ?? { texts: [], workers: [] };
  const sql = postgres(args.url, {
    max: args.concurrency,
    types: { int8 } as never,
    onnotice: () => {},
    connection: { search_path: args.schema },
  });
  const hist = newHistogram();
  let transactions = 0;
  await Promise.all(Array.from({ length: args.concurrency }, () => sql`SELECT 1`));
  meter.start();
  const t0 = performance.now();
  const run = (q: postgres.Sql | postgres.TransactionSql, s: RecordedTxn[number]) =>
    q.unsafe(recording.texts[s.text] as string, s.params as postgres.ParameterOrJSON<never>[]);
  await Promise.all(
    recording.workers.map(async (txns) => {
      for (const txn of txns) {
        const t = performance.now();
        for (let attempt = 1; ; attempt++) {
          try {
            if (txn.length === 1) await run(sql, txn[0] as RecordedTxn[number]);
            else
              await sql.begin(async (tx) => {
                for (const s of txn) await run(tx, s);
              });
            break;
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (attempt >= 5 || (code !== '40001' && code !== '40P01')) throw err;
          }
        }
        hist.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
        transactions++;
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const usage = meter.stop();
  await sql.end({ timeout: 5 });
  return {
    pairs: 0,
    transactions,
    elapsedMs,
    histogram: encodeHistogram(hist),
    doubleClaimed: 0,
    duplicated: 0,
    usage,
  };
}

serve({
  claimComplete: (args: ClaimCompleteArgs) => (args.mode === 'store' ? runStore(args) : runReplay(args)),
});
