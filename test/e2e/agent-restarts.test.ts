import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import type { FleetJobs } from '../../src/app.js';
import { agentPool, isRunning, nextEvent, operator } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./fleetjobs-cli.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/device.ts', import.meta.url));
// Absolute, so that a process started in another directory still finds it.
const TSX = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;

interface CliAgent {
  child: ChildProcess;
  /** Resolves with the first JSON log line that satisfies the predicate. */
  log(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exit: Promise<number | null>;
}

/** `fleetjobs agent` (or another program) as a separate process, its output lines readable as events. */
function startCli(args: string[], program: string[] = [ENTRY, 'agent'], cwd?: string): CliAgent {
  const child = spawn(process.execPath, ['--import', TSX, ...program, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ text: line });
    }
    for (const w of waiters) w();
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exit,
    log(predicate, timeoutMs = 40_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(predicate);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('no such log line from fleetjobs agent'));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

describe('the device agent across restarts (PostgreSQL)', () => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  let ops: ReturnType<typeof operator>;
  const pool = agentPool(() => app.addresses.mqtt);
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db });
    ops = operator(app);
    dir = await mkdtemp(join(tmpdir(), 'fj-agent-'));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await pool.stopAll();
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fleetjobs agent stops on SIGTERM: the running step is killed, the job reported FAILED, exit code 0', async () => {
    await ops.createThing('cli-term');
    await ops.createJob('term', 'cli-term', {
      version: '1.0',
      steps: [{ action: { name: 'wait', type: 'runCommand', input: { command: 'sleep,30' } } }],
    });
    const cli = startCli(['--url', app.addresses.mqtt, '--thing', 'cli-term', '--stop-timeout', '0']);
    children.push(cli.child);
    const step = await cli.log((l) => l.msg === 'step started' && l.jobId === 'term');
    cli.child.kill('SIGTERM');
    expect(await cli.exit).toBe(0);
    expect(isRunning(step.pid as number)).toBe(false);
    const execution = await ops.execution('cli-term', 'term');
    expect(execution.status).toBe('FAILED');
    expect(execution.statusDetails?.detailsMap?.reason).toBe(
      'the agent was stopped: step 1/1 "wait" was stopped (SIGTERM)',
    );
  }, 60_000);

  it('resumes, after the agent was killed mid-job, an execution whose step may be resumed', async () => {
    await ops.createThing('cli-kill');
    await ops.createJob('reboot', 'cli-kill', {
      version: '1.0',
      includeStdOut: true,
      steps: [
        {
          action: {
            name: 'reboot',
            type: 'runCommand',
            input: { command: 'sleep,30' },
            onRestart: 'continue',
          },
        },
        { action: { name: 'check', type: 'runCommand', input: { command: 'echo,back up' } } },
      ],
    });
    const cli = startCli(['--url', app.addresses.mqtt, '--thing', 'cli-kill']);
    children.push(cli.child);
    const step = await cli.log((l) => l.msg === 'step started' && l.jobId === 'reboot');
    cli.child.kill('SIGKILL');
    await cli.exit;
    // The "reboot" takes the step's process group down with it.
    process.kill(-(step.pid as number), 'SIGKILL');
    expect((await ops.execution('cli-kill', 'reboot')).status).toBe('IN_PROGRESS');

    const agent = await pool.start('cli-kill');
    const start = nextEvent(agent, 'job:start');
    const done = nextEvent(agent, 'job:done');
    expect(await start).toEqual({ jobId: 'reboot', executionNumber: 1, resume: true });
    expect(await done).toMatchObject({ status: 'SUCCEEDED', statusDetails: { stdout: 'back up' } });
    expect((await ops.execution('cli-kill', 'reboot')).status).toBe('SUCCEEDED');
  }, 60_000);

  it('reconnects after the broker restarts and reports the job it finished while it was down', async () => {
    await ops.createThing('bounce');
    const release = join(dir, 'release');
    await ops.createJob('across', 'bounce', {
      version: '1.0',
      includeStdOut: true,
      steps: [
        {
          action: {
            name: 'wait',
            type: 'runCommand',
            input: { command: `sh,-c,while [ ! -e ${release} ]; do sleep 0.05; done; echo released` },
          },
        },
      ],
    });
    const agent = await pool.start('bounce');
    await nextEvent(agent, 'step');
    const offline = nextEvent(agent, 'offline');
    const { port: mqttPort } = new URL(app.addresses.mqtt);
    const { port: httpPort } = new URL(app.addresses.http);
    await app.close();
    await offline;
    await writeFile(release, '');
    const reconnected = nextEvent(agent, 'connect');
    const done = nextEvent(agent, 'job:done');
    app = await startTestServer({
      db: t.db,
      config: { mqttPort: Number(mqttPort), httpPort: Number(httpPort) },
    });
    ops = operator(app);
    await reconnected;
    expect(await done).toMatchObject({
      jobId: 'across',
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'released' },
    });

    const next = nextEvent(agent, 'job:done');
    await ops.createJob('after-bounce', 'bounce', {
      version: '1.0',
      steps: [{ action: { name: 'ok', type: 'runCommand', input: { command: 'true' } } }],
    });
    expect(await next).toMatchObject({ jobId: 'after-bounce', status: 'SUCCEEDED' });
    expect((await ops.job('across')).status).toBe('COMPLETED');
  });

  it('the README example device runs a handler-function job and stops cleanly on SIGTERM', async () => {
    await ops.createThing('example-1');
    await ops.createJob('set-1', 'example-1', { operation: 'set-config', config: { interval: 5 } });
    const device = startCli([app.addresses.mqtt, 'example-1'], [EXAMPLE], dir);
    children.push(device.child);
    await device.log((l) => l.text === 'set-1 SUCCEEDED');
    expect(JSON.parse(await readFile(join(dir, 'device-config.json'), 'utf8'))).toEqual({ interval: 5 });
    const execution = await ops.execution('example-1', 'set-1');
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.statusDetails?.detailsMap?.applied).toMatch(/^\d{4}-\d\d-\d\dT/);
    device.child.kill('SIGTERM');
    expect(await device.exit).toBe(0);
  }, 60_000);
});
