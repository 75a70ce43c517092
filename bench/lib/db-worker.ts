/**
 * A child process that drives claim + complete without MQTT (S2), 32 workers at once, each taking its share
 * of the things and claiming until a thing has nothing QUEUED left:
 * - store: the service as devices reach it (startNext, then updateExecution to SUCCEEDED with
 *   expectedVersion), with the thing lock, outbox rows and job rollup;
 * - raw: what a naive implementation does per device request (protocol fact 5): one claim statement
 *   (`FOR UPDATE SKIP LOCKED` on the thing's queue head), then one guarded complete, each its own
 *   transaction, on raw postgres.js.
 */
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { serve } from './child.js';
import { encodeHistogram, newHistogram } from './hist.js';
import { processMeter, type ProcessUsage } from './metrics.js';
import { serviceDeps } from './db.js';
import { createPostgresDb } from '../../src/store/db.js';
import { startNext } from '../../src/service/start-next.js';
import { updateExecution } from '../../src/service/update-execution.js';

export interface ClaimCompleteArgs {
  url: string;
  schema: string;
  concurrency: number;
  thingNames: string[];
  mode: 'store' | 'raw';
}

export interface ClaimCompleteResult {
  pairs: number;
  transactions: number;
  elapsedMs: number;
  /** Per transaction (store: per service call). */
  histogram: string;
  doubleClaimed: number;
  duplicated: number;
  /** raw: completes whose version guard matched no row (a claim that was not really ours). */
  guardMisses: number;
  usage: ProcessUsage;
}

/** The execution a claim handed out, as both modes see it. */
interface Claimed {
  jobId: string;
  executionNumber: number;
  versionNumber: number;
}

interface Mode {
  claim(thingName: string): Promise<Claimed | undefined>;
  /** False when the guarded update changed nothing. */
  complete(thingName: string, exec: Claimed): Promise<boolean>;
  close(): Promise<void>;
}

const meter = processMeter('store-driver');

async function storeMode(args: ClaimCompleteArgs): Promise<Mode> {
  // The service's own pool size: its batches need a few connections, not one per caller, and on a pool as
  // large as the callers each statement would be prepared (planned) anew on every connection during the run.
  const db = createPostgresDb({ url: args.url, schema: args.schema });
  // Warm the pool so that connection set-up is not measured.
  await Promise.all(Array.from({ length: 10 }, () => db.query('SELECT 1')));
  const deps = serviceDeps(db);
  return {
    claim: (thingName) => startNext(deps, thingName, {}),
    complete: async (thingName, exec) => {
      await updateExecution(deps, {
        thingName,
        jobId: exec.jobId,
        status: 'SUCCEEDED',
        expectedVersion: exec.versionNumber,
      });
      return true;
    },
    close: () => db.close(),
  };
}

// As the store parses it (src/store/db.ts): every int8 here fits a double.
const int8 = { to: 20, from: [20], serialize: (v: unknown) => String(v), parse: (v: string) => Number(v) };

async function rawMode(args: ClaimCompleteArgs): Promise<Mode> {
  const sql = postgres(args.url, {
    max: args.concurrency,
    types: { int8 } as never,
    onnotice: () => {},
    connection: { search_path: args.schema },
  });
  await Promise.all(Array.from({ length: args.concurrency }, () => sql`SELECT 1`));
  return {
    async claim(thingName) {
      const [row] = await sql<{ job_id: string; execution_number: number; version_number: number }[]>`
        UPDATE job_executions
        SET status = 'IN_PROGRESS', version_number = version_number + 1, started_at = now(),
          last_updated_at = now()
        WHERE (job_id, thing_name, execution_number) = (
          SELECT job_id, thing_name, execution_number FROM job_executions
          WHERE thing_name = ${thingName} AND status = 'QUEUED'
          ORDER BY queued_at, seq LIMIT 1
          FOR UPDATE SKIP LOCKED)
        RETURNING job_id, execution_number, version_number`;
      return row
        ? { jobId: row.job_id, executionNumber: row.execution_number, versionNumber: row.version_number }
        : undefined;
    },
    async complete(thingName, exec) {
      const r = await sql`
        UPDATE job_executions
        SET status = 'SUCCEEDED', version_number = version_number + 1, last_updated_at = now()
        WHERE job_id = ${exec.jobId} AND thing_name = ${thingName}
          AND execution_number = ${exec.executionNumber} AND version_number = ${exec.versionNumber}`;
      return r.count === 1;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

async function claimComplete(args: ClaimCompleteArgs): Promise<ClaimCompleteResult> {
  const mode = await (args.mode === 'store' ? storeMode(args) : rawMode(args));
  const hist = newHistogram();
  const claimed = new Set<string>();
  const completed = new Set<string>();
  let doubleClaimed = 0;
  let duplicated = 0;
  let guardMisses = 0;
  let pairs = 0;
  let transactions = 0;
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    transactions++;
    return v;
  };
  meter.start();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: args.concurrency }, async (_, w) => {
      for (let i = w; i < args.thingNames.length; i += args.concurrency) {
        const thingName = args.thingNames[i] as string;
        for (;;) {
          const exec = await timed(() => mode.claim(thingName));
          if (exec === undefined) break;
          const key = `${thingName}/${exec.jobId}/${exec.executionNumber}`;
          if (claimed.has(key)) doubleClaimed++;
          claimed.add(key);
          if (!(await timed(() => mode.complete(thingName, exec)))) {
            guardMisses++;
            continue;
          }
          if (completed.has(key)) duplicated++;
          completed.add(key);
          pairs++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const usage = meter.stop();
  await mode.close();
  return {
    pairs,
    transactions,
    elapsedMs,
    histogram: encodeHistogram(hist),
    doubleClaimed,
    duplicated,
    guardMisses,
    usage,
  };
}

serve({ claimComplete: (args: ClaimCompleteArgs) => claimComplete(args) });
