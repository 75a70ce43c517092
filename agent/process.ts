import { spawn } from 'node:child_process';
import { TailBuffer } from './output.js';

export interface RunProcessOptions {
  file: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Kill the process group once this many milliseconds have passed. */
  timeoutMs?: number;
  /** Aborting kills the process group (SIGTERM, then SIGKILL after killGraceMs). */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Where stdout and stderr go; shared across the steps of a job so the tail spans them. */
  stdout?: TailBuffer;
  stderr?: TailBuffer;
  onSpawn?: (pid: number) => void;
}

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** The process could not be started (ENOENT, EACCES...). */
  spawnError?: string;
  /** The signal that ended it when we killed it: SIGTERM if it obeyed, SIGKILL if it did not. */
  killedWith?: NodeJS.Signals;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Runs one program in a process group of its own (detached), so that a timeout or a cancel kills the whole
 * tree it started, not just the first process: SIGTERM to the group, then SIGKILL if it is still there after
 * the grace period. Output is kept as a bounded tail. Never rejects.
 */
export function runProcess(options: RunProcessOptions): Promise<ProcessResult> {
  const grace = options.killGraceMs ?? 5000;
  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      resolve({ exitCode: null, signal: null, timedOut: false, aborted: true });
      return;
    }
    let child;
    try {
      child = spawn(options.file, options.args, {
        cwd: options.cwd,
        env: options.env,
        uid: options.uid,
        gid: options.gid,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve({ exitCode: null, signal: null, timedOut: false, aborted: false, spawnError: String(err) });
      return;
    }
    let timedOut = false;
    let aborted = false;
    let killedWith: NodeJS.Signals | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: string | undefined;
    const pid = child.pid;

    const kill = () => {
      if (pid === undefined || killedWith !== undefined) return;
      killedWith = 'SIGTERM';
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => {
        killedWith = 'SIGKILL';
        killGroup(pid, 'SIGKILL');
      }, grace);
    };
    const onAbort = () => {
      aborted = true;
      kill();
    };
    const timeout =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            kill();
          }, options.timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => options.stdout?.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => options.stderr?.write(chunk));
    child.on('error', (err) => {
      spawnError = err.message;
    });
    if (pid !== undefined) options.onSpawn?.(pid);

    let settled = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        exitCode,
        signal,
        timedOut,
        aborted,
        ...(spawnError === undefined ? {} : { spawnError }),
        ...(killedWith === undefined ? {} : { killedWith }),
      });
    };
    // 'close' waits for the pipes too; a background process that keeps them open must not hold the step, so
    // after the exit the pipes get a moment to drain and are then let go.
    child.on('close', (code, signal) => finish(code, signal));
    child.on('exit', (code, signal) => {
      const drain = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, 500);
      drain.unref();
    });
  });
}
