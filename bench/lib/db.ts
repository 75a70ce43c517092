import { randomBytes } from 'node:crypto';
import { createPostgresDb, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { insertGroupMembers, insertThingGroup, insertThings } from '../../src/store/things.js';
import { createJob } from '../../src/service/create-job.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { pino } from 'pino';

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const SEED_STATEMENT_MS = 3_600_000;

/** A migrated schema of the bench's own, dropped by drop(); every run starts from a fresh one. */
export interface BenchSchema {
  schema: string;
  url: string;
  db: Db;
  deps: ServiceDeps;
  drop(): Promise<void>;
}

export async function createBenchSchema(url = BENCH_DATABASE_URL, max = 4): Promise<BenchSchema> {
  // The pid in the name lets a later run tell a dead run's schema from a concurrent run's.
  const schema = `fj_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = createPostgresDb({ url, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  // Seeding writes up to 1,000,000 rows in one statement, longer than the deployed statement timeout.
  const db = createPostgresDb({ url, schema, max, timeouts: { statementMs: SEED_STATEMENT_MS } });
  await migrate(db);
  return {
    schema,
    url,
    db,
    deps: serviceDeps(db),
    async drop() {
      await db.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Drops the schemas of bench runs whose process died before its own cleanup; live runs keep theirs. */
export async function dropStaleSchemas(url = BENCH_DATABASE_URL): Promise<void> {
  const admin = createPostgresDb({ url, max: 1 });
  const rows = await admin.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fj\\_bench\\_%'`,
  );
  for (const r of rows) {
    const pid = Number(r.nspname.split('_')[2]);
    if (!Number.isInteger(pid) || !alive(pid)) await admin.query(`DROP SCHEMA ${r.nspname} CASCADE`);
  }
  await admin.close();
}

export function serviceDeps(db: Db): ServiceDeps {
  return {
    db,
    clock: () => new Date(),
    log: pino({ level: 'silent' }),
    arn: { region: 'local', accountId: '000000000000' },
    topics: createTopicScheme(),
    outboxWritten: () => {},
  };
}

export const thingName = (i: number) => `bench-thing-${String(i).padStart(6, '0')}`;
export const thingNames = (n: number) => Array.from({ length: n }, (_, i) => thingName(i));

/**
 * n things in group `fleet` and `jobs` SNAPSHOT jobs over the group, created through CreateJob, so every thing
 * has `jobs` QUEUED executions. The outbox the fan-out wrote is emptied: nobody was connected to be notified,
 * and a backlog would be published in the middle of the measurement.
 */
export async function seedFleet(s: BenchSchema, n: number, jobs: number): Promise<void> {
  const now = new Date();
  const names = thingNames(n);
  for (let i = 0; i < names.length; i += 50_000) await insertThings(s.db, names.slice(i, i + 50_000), now);
  await insertThingGroup(s.db, { thingGroupName: 'fleet' }, now);
  for (let i = 0; i < names.length; i += 50_000)
    await insertGroupMembers(s.db, 'fleet', names.slice(i, i + 50_000), now);
  for (let j = 0; j < jobs; j++) {
    await createJob(s.deps, {
      jobId: `bench-job-${String(j).padStart(4, '0')}`,
      targets: ['thinggroup/fleet'],
      document: JSON.stringify({ operation: 'bench', step: j }),
    });
  }
  await s.db.query(`DELETE FROM outbox`);
  await s.db.query(`VACUUM ANALYZE things, thing_group_members, jobs, job_executions, outbox`);
}

/** Execution counts by status, for the correctness checks at the end of a run. */
export async function countExecutions(db: Db): Promise<Record<string, number>> {
  const rows = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*) AS n FROM job_executions GROUP BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
