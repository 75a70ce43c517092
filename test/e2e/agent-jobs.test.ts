import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import { agentPool, isRunning, nextEvent, operator } from './helpers.js';

const command = (line: string, extra: object = {}) => ({
  version: '1.0',
  includeStdOut: true,
  steps: [{ action: { name: 'run', type: 'runCommand', input: { command: line }, ...extra } }],
});

describe('the device agent against a running fleetjobs (PostgreSQL)', () => {
  let t: TestDb;
  let app: FleetJobs;
  let ops: ReturnType<typeof operator>;
  let dir: string;
  const pool = agentPool(() => app.addresses.mqtt);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fj-agent-jobs-'));
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db });
    ops = operator(app);
  });
  afterEach(() => pool.stopAll());
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a runCommand job created over REST: SUCCEEDED with its output, and the job COMPLETED', async () => {
    await ops.createThing('dev-ok');
    const agent = await pool.start('dev-ok');
    const done = nextEvent(agent, 'job:done');
    // Created after the agent connected: it learns of the job through notify-next.
    await ops.createJob('hello', 'dev-ok', command('echo,hello fleet'));
    expect(await done).toMatchObject({
      jobId: 'hello',
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'hello fleet' },
    });
    const execution = await ops.execution('dev-ok', 'hello');
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.statusDetails?.detailsMap?.stdout).toBe('hello fleet');
    expect((await ops.job('hello')).status).toBe('COMPLETED');
  });

  it('reports a failing command FAILED with the exit code and stderr', async () => {
    await ops.createThing('dev-fail');
    // Queued before the agent connects: it takes the job through start-next at connect.
    await ops.createJob('fails', 'dev-fail', command('sh,-c,echo broken >&2; exit 3'));
    const agent = await pool.start('dev-fail');
    const done = await nextEvent(agent, 'job:done');
    expect(done.status).toBe('FAILED');
    const details = (await ops.execution('dev-fail', 'fails')).statusDetails?.detailsMap;
    expect(details?.reason).toBe('step 1/1 "run" exited with code 3');
    expect(details?.stderr).toBe('broken');
  });

  it('rejects an invalid document with the reason', async () => {
    await ops.createThing('dev-bad');
    await ops.createJob('bad-doc', 'dev-bad', {
      version: '1.0',
      steps: [{ action: { name: 'x', type: 'reboot' } }],
    });
    const agent = await pool.start('dev-bad');
    expect((await nextEvent(agent, 'job:done')).status).toBe('REJECTED');
    const execution = await ops.execution('dev-bad', 'bad-doc');
    expect(execution.status).toBe('REJECTED');
    expect(execution.statusDetails?.detailsMap?.reason).toContain(
      'steps[0].action.type must be runHandler or runCommand',
    );
  });

  it('kills a step that outlives its timeout and reports it', async () => {
    await ops.createThing('dev-slow');
    await ops.createJob('slow', 'dev-slow', command('sleep,30', { timeoutSeconds: 0.5 }));
    const agent = await pool.start('dev-slow');
    const step = nextEvent(agent, 'step');
    const done = await nextEvent(agent, 'job:done');
    expect(done.status).toBe('FAILED');
    expect(isRunning((await step).pid)).toBe(false);
    expect((await ops.execution('dev-slow', 'slow')).statusDetails?.detailsMap?.reason).toBe(
      'step 1/1 "run" timed out after 0.5 s and was killed (SIGTERM)',
    );
  });

  it('trims 1 MB of output to its last 1024 printable characters and still reports the job', async () => {
    await ops.createThing('dev-loud');
    const line = 'yes 0123456789 | head -c 1048576; printf "\\033[1m\\001 the end\\n"';
    // Without shell: true the line would be one program name with spaces, which a document may not ask for.
    await ops.createJob('loud', 'dev-loud', command(line));
    await ops.createJob('loud2', 'dev-loud', {
      version: '1.0',
      includeStdOut: true,
      steps: [{ action: { name: 'loud', type: 'runCommand', input: { shell: true, command: line } } }],
    });
    const agent = await pool.start('dev-loud');
    const first = await nextEvent(agent, 'job:done');
    expect(first).toMatchObject({ jobId: 'loud', status: 'REJECTED' });
    const done = await nextEvent(agent, 'job:done');
    expect(done.status).toBe('SUCCEEDED');
    const stdout = (await ops.execution('dev-loud', 'loud2')).statusDetails?.detailsMap?.stdout ?? '';
    expect(Array.from(stdout)).toHaveLength(1024);
    expect(stdout.endsWith('0123456789 0 [1m the end')).toBe(true);
    expect(/^[^\p{C}]{1,1024}$/u.test(stdout)).toBe(true);
  });

  it('aborts the running step on a force cancel, stops reporting on it and takes the next job', async () => {
    await ops.createThing('dev-cancel');
    await ops.createJob('long', 'dev-cancel', command('sleep,30'));
    await ops.createJob('after', 'dev-cancel', command('echo,next'));
    const agent = await pool.start('dev-cancel');
    const step = await nextEvent(agent, 'step', (e) => e.jobId === 'long');
    const canceled = nextEvent(agent, 'job:canceled');
    const next = nextEvent(agent, 'job:done');
    await ops.cancelJob('long', true);
    expect(await canceled).toMatchObject({ jobId: 'long', executionNumber: 1 });
    expect(isRunning(step.pid)).toBe(false);
    expect(await next).toMatchObject({ jobId: 'after', status: 'SUCCEEDED' });
    expect((await ops.execution('dev-cancel', 'long')).status).toBe('CANCELED');
  });

  it('runs an operation handler with progress, and tells it when it resumes an execution', async () => {
    await ops.createThing('dev-op');
    await ops.createJob('op-1', 'dev-op', { operation: 'update', version: '2.1' });
    // A previous agent started the execution and reported progress, then died.
    const dead = await connectDevice(app.addresses.mqtt, { clientId: 'dead-agent' });
    const root = '$aws/things/dev-op/jobs';
    await deviceRequest(dead, `${root}/start-next`, { clientToken: 's1' });
    await deviceRequest(dead, `${root}/op-1/update`, {
      clientToken: 'u1',
      status: 'IN_PROGRESS',
      statusDetails: { step: 'downloaded', percent: '50' },
    });
    await dead.endAsync();
    const seen: Array<{ resume: boolean; previous: unknown; version: unknown }> = [];
    const agent = await pool.start('dev-op', {
      handlers: {
        update: async (ctx) => {
          seen.push({ resume: ctx.resume, previous: ctx.statusDetails, version: ctx.document.version });
          await ctx.progress({ step: 'installing', percent: 90 });
          return { installed: String(ctx.document.version) };
        },
      },
    });
    const done = await nextEvent(agent, 'job:done');
    expect(seen).toEqual([{ resume: true, previous: { step: 'downloaded', percent: '50' }, version: '2.1' }]);
    expect(done).toMatchObject({ jobId: 'op-1', status: 'SUCCEEDED', statusDetails: { installed: '2.1' } });
    expect((await ops.execution('dev-op', 'op-1')).statusDetails?.detailsMap).toEqual({ installed: '2.1' });
  });

  it('fails a handler function that throws, and one that outlives its timeout even if it ignores its signal', async () => {
    await ops.createThing('dev-hf');
    await ops.createJob('throws', 'dev-hf', { operation: 'flash' });
    await ops.createJob('hangs', 'dev-hf', { operation: 'hang' });
    const agent = await pool.start('dev-hf', {
      stepTimeoutSeconds: 0.3,
      killGraceMs: 100,
      handlers: {
        flash: async () => {
          throw new Error('checksum mismatch');
        },
        hang: () => new Promise(() => {}),
      },
    });
    const first = await nextEvent(agent, 'job:done');
    const second = await nextEvent(agent, 'job:done');
    expect(first).toMatchObject({
      jobId: 'throws',
      status: 'FAILED',
      statusDetails: { reason: 'operation flash failed: checksum mismatch' },
    });
    expect(second).toMatchObject({
      jobId: 'hangs',
      status: 'FAILED',
      statusDetails: { reason: 'operation hang timed out after 0.3 s' },
    });
  });

  it('fails, with a clear reason, a step it cannot know the outcome of after a restart', async () => {
    await ops.createThing('dev-rs');
    await ops.createJob('rs', 'dev-rs', command('sleep,30'));
    const dead = await connectDevice(app.addresses.mqtt, { clientId: 'dead-agent-2' });
    await deviceRequest(dead, '$aws/things/dev-rs/jobs/start-next', { clientToken: 's1' });
    await deviceRequest(dead, '$aws/things/dev-rs/jobs/rs/update', {
      clientToken: 'u1',
      status: 'IN_PROGRESS',
      statusDetails: { step: '1', stepName: 'run' },
    });
    await dead.endAsync();
    const agent = await pool.start('dev-rs');
    expect(await nextEvent(agent, 'job:done')).toMatchObject({ jobId: 'rs', status: 'FAILED' });
    expect((await ops.execution('dev-rs', 'rs')).statusDetails?.detailsMap?.reason).toContain(
      'the agent restarted while step 1/1 "run" was running, so its outcome is unknown',
    );
  });

  it('shrugs off malformed and misleading notifications and keeps running its job', async () => {
    await ops.createThing('dev-junk');
    const root = '$aws/things/dev-junk/jobs';
    const junk = async () => {
      for (const [topic, payload] of [
        [`${root}/notify-next`, 'not json'],
        [`${root}/notify-next`, '{"execution":"x"}'],
        [`${root}/notify-next`, '{"timestamp":1}'],
        [`${root}/notify`, '{"jobs":{"IN_PROGRESS":5,"QUEUED":"x"}}'],
        [`${root}/notify`, '[1,2]'],
        [`${root}/start-next/accepted`, '{"clientToken":"nobody","execution":{"jobId":"../x"}}'],
        [`${root}/x/update/rejected`, '{"clientToken":5}'],
      ] as const) {
        await app.broker.publish(topic, payload, 1);
      }
    };
    const agent = await pool.start('dev-junk');
    await junk();
    const release = join(dir, 'junk-release');
    await ops.createJob('junk', 'dev-junk', command(`sh,-c,while [ ! -e ${release} ]; do sleep 0.05; done`));
    await nextEvent(agent, 'step');
    // While it runs, notify-next naming no execution makes the agent check; the job is still pending, so it goes on.
    await junk();
    const done = nextEvent(agent, 'job:done');
    await writeFile(release, '');
    expect(await done).toMatchObject({ jobId: 'junk', status: 'SUCCEEDED' });
  });

  it('runs 100 queued jobs in order, each exactly once', async () => {
    await ops.createThing('dev-many');
    const ids = Array.from({ length: 100 }, (_, i) => `many-${String(i).padStart(3, '0')}`);
    for (const id of ids) await ops.createJob(id, 'dev-many', command('true'));
    const starts: string[] = [];
    const statuses = new Map<string, string>();
    const agent = await pool.start('dev-many');
    agent.on('job:start', (e) => starts.push(`${e.jobId}#${e.executionNumber}`));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${statuses.size} of 100 jobs done`)), 100_000);
      agent.on('job:done', (e) => {
        statuses.set(e.jobId, e.status);
        if (statuses.size === ids.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(starts).toEqual(ids.map((id) => `${id}#1`));
    expect([...statuses.values()].every((s) => s === 'SUCCEEDED')).toBe(true);
    const rows = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM job_executions WHERE thing_name = 'dev-many' AND status = 'SUCCEEDED'`,
    );
    expect(rows[0]?.n).toBe(100);
  }, 120_000);
});
