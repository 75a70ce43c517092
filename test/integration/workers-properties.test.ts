import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { minutes, workerDeps } from '../helpers/workers.js';
import { createJob } from '../../src/service/create-job.js';
import { startNext } from '../../src/service/start-next.js';
import { updateExecution } from '../../src/service/update-execution.js';
import { cancelJobExecution } from '../../src/service/cancel-job-execution.js';
import { cancelJob } from '../../src/service/cancel-job.js';
import { describeJob } from '../../src/service/describe-jobs.js';
import { FleetJobsError } from '../../src/protocol/errors.js';
import { isTerminal, type ExecutionStatus } from '../../src/protocol/states.js';
import { insertThings } from '../../src/store/things.js';
import { createWorkers } from '../../src/workers/index.js';

type Command =
  | { kind: 'startNext'; thing: number; step?: number | undefined }
  | { kind: 'update'; thing: number; job: number; status: string; step?: number | undefined }
  | { kind: 'cancelExecution'; thing: number; job: number; force: boolean }
  | { kind: 'cancelJob'; job: number; force: boolean }
  | { kind: 'tick'; minutes: number };

const THINGS = 3;
const JOBS = 2;
const thing = fc.integer({ min: 0, max: THINGS - 1 });
const job = fc.integer({ min: 0, max: JOBS - 1 });
const step = fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined });
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('startNext' as const), thing, step }),
  fc.record({
    kind: fc.constant('update' as const),
    thing,
    job,
    status: fc.constantFrom('IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'REJECTED'),
    step,
  }),
  fc.record({ kind: fc.constant('cancelExecution' as const), thing, job, force: fc.boolean() }),
  fc.record({ kind: fc.constant('cancelJob' as const), job, force: fc.boolean() }),
  fc.record({ kind: fc.constant('tick' as const), minutes: fc.integer({ min: 0, max: 4 }) }),
);

interface Row {
  jobId: string;
  thingName: string;
  executionNumber: number;
  status: ExecutionStatus;
  versionNumber: number;
}

describe.each(BACKENDS)('random interleavings of devices, cancels and timers on %s', (backend) => {
  let t: TestDb;
  let run = 0;
  beforeAll(async () => {
    t = await createTestDb(backend);
  });
  afterAll(() => t.close());

  it('versions only grow, nothing leaves a terminal status, job counters equal the executions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
        const r = run++;
        let now = new Date('2026-07-01T00:00:00Z');
        const deps = workerDeps(t.db, now);
        const workers = createWorkers(deps, { autoStart: false });
        const things = Array.from({ length: THINGS }, (_, i) => `p${r}-t${i}`);
        const jobs = Array.from({ length: JOBS }, (_, i) => `p${r}-j${i}`);
        await insertThings(t.db, things, now);
        await createJob(deps, {
          jobId: jobs[0] as string,
          targets: things.map((n) => `thing/${n}`),
          document: '{}',
          timeoutConfig: { queuedTimeoutInMinutes: 3, inProgressTimeoutInMinutes: 5 },
          jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'ALL', numberOfRetries: 2 }] },
        });
        await createJob(deps, {
          jobId: jobs[1] as string,
          targets: things.map((n) => `thing/${n}`),
          document: '{}',
        });

        const snapshot = async () =>
          new Map(
            (
              await t.db.query<Row>(
                `SELECT job_id, thing_name, execution_number, status, version_number FROM job_executions
                 WHERE job_id = ANY($1::text[])`,
                [jobs],
              )
            ).map((e) => [`${e.jobId}/${e.thingName}/${e.executionNumber}`, e]),
          );
        const completed = new Set<string>();
        let before = await snapshot();
        for (const c of commands) {
          try {
            if (c.kind === 'startNext') {
              await startNext(deps, things[c.thing] as string, { stepTimeoutInMinutes: c.step });
            } else if (c.kind === 'update') {
              await updateExecution(deps, {
                thingName: things[c.thing] as string,
                jobId: jobs[c.job] as string,
                status: c.status,
                stepTimeoutInMinutes: c.status === 'IN_PROGRESS' ? c.step : undefined,
              });
            } else if (c.kind === 'cancelExecution') {
              await cancelJobExecution(deps, {
                thingName: things[c.thing] as string,
                jobId: jobs[c.job] as string,
                force: c.force,
              });
            } else if (c.kind === 'cancelJob') {
              await cancelJob(deps, { jobId: jobs[c.job] as string, force: c.force });
            } else {
              now = minutes(now, c.minutes);
              deps.setNow(now);
              await workers.runOnce(now);
            }
          } catch (err) {
            if (!(err instanceof FleetJobsError)) throw err;
          }
          const after = await snapshot();
          for (const [key, old] of before) {
            const cur = after.get(key);
            expect(cur, `${key} disappeared after ${JSON.stringify(c)}`).toBeDefined();
            if (!cur) continue;
            expect(cur.versionNumber).toBeGreaterThanOrEqual(old.versionNumber);
            if (cur.status !== old.status) expect(cur.versionNumber).toBeGreaterThan(old.versionNumber);
            if (isTerminal(old.status)) {
              expect([cur.status, cur.versionNumber], `${key} left ${old.status}`).toEqual([
                old.status,
                old.versionNumber,
              ]);
            }
          }
          for (const jobId of jobs) {
            const rows = [...after.values()].filter((e) => e.jobId === jobId);
            const latest = new Map<string, Row>();
            for (const e of rows) {
              const prev = latest.get(e.thingName);
              if (!prev || prev.executionNumber < e.executionNumber) latest.set(e.thingName, e);
            }
            const n = (s: ExecutionStatus) => [...latest.values()].filter((e) => e.status === s).length;
            const pendingPerThing = rows.filter((e) => !isTerminal(e.status)).map((e) => e.thingName);
            expect(new Set(pendingPerThing).size, 'one pending execution per thing').toBe(
              pendingPerThing.length,
            );
            const { job } = await describeJob(deps, jobId);
            expect(job.jobProcessDetails).toMatchObject({
              numberOfQueuedThings: n('QUEUED'),
              numberOfInProgressThings: n('IN_PROGRESS'),
              numberOfSucceededThings: n('SUCCEEDED'),
              numberOfFailedThings: n('FAILED'),
              numberOfRejectedThings: n('REJECTED'),
              numberOfTimedOutThings: n('TIMED_OUT'),
              numberOfCanceledThings: n('CANCELED'),
              numberOfRemovedThings: n('REMOVED'),
            });
            if (job.status === 'COMPLETED') completed.add(jobId);
            if (completed.has(jobId)) {
              expect(job.status).toBe('COMPLETED');
              expect(pendingPerThing).toEqual([]);
            }
          }
          before = after;
        }
        await workers.close();
      }),
      { numRuns: backend === 'postgres' ? 15 : 5 },
    );
  });
});
