import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../../agent/process.js';
import { TailBuffer } from '../../agent/output.js';
import { checkRunAsUsers, runSteps, type StepRunnerOptions } from '../../agent/runner.js';
import { InvalidDocumentError, parseJobDocument } from '../../agent/document.js';

/** A process that exited and was reaped, or became a zombie, no longer runs. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('process groups', () => {
  it('kills the whole process group of a step that outlives its timeout', async () => {
    const stdout = new TailBuffer();
    const result = await runProcess({
      file: '/bin/sh',
      args: ['-c', 'sleep 30 & echo $!; wait'],
      timeoutMs: 300,
      stdout,
    });
    const grandchild = Number(stdout.toString().trim());
    expect(result).toMatchObject({ timedOut: true, killedWith: 'SIGTERM', signal: 'SIGTERM' });
    expect(grandchild).toBeGreaterThan(0);
    expect(running(grandchild)).toBe(false);
  });

  it('follows SIGTERM with SIGKILL when the group ignores SIGTERM', async () => {
    const controller = new AbortController();
    const result = await runProcess({
      file: '/bin/sh',
      args: ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'],
      signal: controller.signal,
      killGraceMs: 200,
      stdout: { write: () => controller.abort() } as unknown as TailBuffer,
    });
    expect(result).toMatchObject({ aborted: true, killedWith: 'SIGKILL', signal: 'SIGKILL' });
  });

  it('reports a program that cannot start instead of throwing', async () => {
    const result = await runProcess({ file: '/nonexistent/program', args: [] });
    expect(result.spawnError).toContain('ENOENT');
  });
});

describe('step documents', () => {
  let dir: string;
  const options = (over: Partial<StepRunnerOptions> = {}): StepRunnerOptions => ({
    handlerDir: dir,
    defaultStepTimeoutSeconds: 30,
    killGraceMs: 500,
    signal: new AbortController().signal,
    startAt: 0,
    beforeStep: async () => {},
    ...over,
  });
  const steps = (doc: object) => {
    const parsed = parseJobDocument(doc, new Set());
    if (parsed.kind !== 'steps') throw new Error('not a steps document');
    return parsed;
  };
  const run = (command: string, extra: object = {}) => ({
    action: { name: command, type: 'runCommand', input: { command }, ...extra },
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fj-handlers-'));
    await writeFile(join(dir, 'greet.sh'), '#!/bin/sh\necho "user=[$1] arg=[$2]"\n');
    await chmod(join(dir, 'greet.sh'), 0o700);
    await writeFile(join(dir, 'open.sh'), '#!/bin/sh\necho open\n');
    await chmod(join(dir, 'open.sh'), 0o777);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('runs steps in order, skips an ignored failure and runs the final step after them', async () => {
    const seen: number[] = [];
    const outcome = await runSteps(
      steps({
        version: '1.0',
        includeStdOut: true,
        steps: [
          run('sh,-c,echo one; exit 3', { ignoreStepFailure: 'true' }),
          { action: { name: 'h', type: 'runHandler', input: { handler: 'greet.sh', args: ['x y'] } } },
        ],
        finalStep: run('echo,final'),
      }),
      options({ beforeStep: async (i) => void seen.push(i) }),
    );
    expect(seen).toEqual([0, 1, 2]);
    expect(outcome).toEqual({
      status: 'SUCCEEDED',
      statusDetails: { stdout: 'one user=[] arg=[x y] final' },
    });
  });

  it('fails on the first failing step, skips the rest and names the step and exit code', async () => {
    const seen: number[] = [];
    const outcome = await runSteps(
      steps({
        version: '1.0',
        steps: [run('sh,-c,echo oops >&2; exit 4'), run('echo,never')],
        finalStep: run('echo,final'),
      }),
      options({ beforeStep: async (i) => void seen.push(i) }),
    );
    expect(seen).toEqual([0]);
    expect(outcome).toEqual({
      status: 'FAILED',
      statusDetails: {
        reason: 'step 1/3 "sh,-c,echo oops >&2; exit 4" exited with code 4',
        failedStep: 'sh,-c,echo oops >&2; exit 4',
        stderr: 'oops',
      },
    });
  });

  it('refuses a handler that group or others may rewrite', async () => {
    const outcome = await runSteps(
      steps({
        version: '1.0',
        steps: [{ action: { name: 'o', type: 'runHandler', input: { handler: 'open.sh' } } }],
      }),
      options(),
    );
    expect(outcome.status).toBe('FAILED');
    expect(outcome.statusDetails.reason).toContain('not writable by group or others (mode is 777)');
  });

  it('starts a resumed document at the step it is told to', async () => {
    const outcome = await runSteps(
      steps({ version: '1.0', includeStdOut: true, steps: [run('echo,first'), run('echo,second')] }),
      options({ startAt: 1 }),
    );
    expect(outcome.statusDetails.stdout).toBe('second');
  });

  it('lets runAsUser name only the agent user or a permitted one, and passes it to handlers first', async () => {
    const asUser = (user: string) =>
      steps({
        version: '1.0',
        includeStdOut: true,
        steps: [
          {
            action: {
              name: 'h',
              type: 'runHandler',
              runAsUser: user,
              input: { handler: 'greet.sh', args: ['a'] },
            },
          },
        ],
      });
    expect(() => checkRunAsUsers(asUser('someone-else'))).toThrow(InvalidDocumentError);
    expect(() => checkRunAsUsers(asUser('someone-else'), ['someone-else'])).not.toThrow();
    const me = userInfo().username;
    checkRunAsUsers(asUser(me));
    const outcome = await runSteps(asUser(me), options());
    expect(outcome.statusDetails.stdout).toBe(`user=[${me}] arg=[a]`);
  });
});
