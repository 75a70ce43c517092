import { execFileSync } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { LIMITS, STATUS_DETAILS_KEY_PATTERN } from '../src/protocol/limits.js';
import type { StatusDetails } from '../src/protocol/messages.js';
import { InvalidDocumentError, type Action, type JobDocument } from './document.js';
import { statusValue, TailBuffer } from './output.js';
import { runProcess, type ProcessResult } from './process.js';

export interface Outcome {
  status: 'SUCCEEDED' | 'FAILED';
  statusDetails: StatusDetails;
}

export interface StepRunnerOptions {
  handlerDir?: string;
  /** Users a step may name in runAsUser besides the agent's own user. */
  runAsUsers?: readonly string[];
  defaultStepTimeoutSeconds: number;
  killGraceMs: number;
  /** Aborted when the execution is canceled or the agent stops. */
  signal: AbortSignal;
  /** Index of the first step to run (a resumed execution skips the steps already done). */
  startAt: number;
  /** Called before each step; the agent reports the step as progress. */
  beforeStep(index: number, action: Action, total: number): Promise<void>;
  onSpawn?(index: number, action: Action, pid: number): void;
}

const keyRe = new RegExp(STATUS_DETAILS_KEY_PATTERN);

/** Turns free-form pairs into valid statusDetails: good keys only, printable values, at most 10 pairs. */
export function toStatusDetails(pairs: Record<string, unknown>): StatusDetails {
  const out: StatusDetails = {};
  let n = 0;
  for (const [key, raw] of Object.entries(pairs)) {
    if (n >= LIMITS.MAX_STATUS_DETAILS_PAIRS) break;
    if (!keyRe.test(key) || raw === undefined || raw === null) continue;
    const value = statusValue(typeof raw === 'string' ? raw : JSON.stringify(raw));
    if (value === undefined) continue;
    out[key] = value;
    n++;
  }
  return out;
}

/** A document may only name users the agent was allowed to run as; anything else is REJECTED up front. */
export function checkRunAsUsers(doc: JobDocument, allowed: readonly string[] = []): void {
  if (doc.kind !== 'steps') return;
  const self = userInfo().username;
  for (const action of [...doc.steps, ...(doc.finalStep ? [doc.finalStep] : [])]) {
    const user = action.runAsUser;
    if (user !== undefined && user !== self && !allowed.includes(user)) {
      throw new InvalidDocumentError(
        `step "${action.name}" asks to run as ${user}, which this agent does not permit`,
      );
    }
  }
}

function lookupIds(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function handlerFile(dir: string | undefined, name: string): Promise<string> {
  if (dir === undefined) throw new Error(`no handler directory is configured for handler ${name}`);
  const file = join(dir, name);
  let stat;
  try {
    stat = await fs.stat(file);
    await fs.access(file, constants.X_OK);
  } catch {
    throw new Error(`handler ${name} is not an executable file in ${dir}`);
  }
  // Like the Device Client: a handler others can rewrite would let them run code as the agent.
  if (!stat.isFile() || (stat.mode & 0o022) !== 0) {
    throw new Error(
      `handler ${name} must be a file not writable by group or others (mode is ${(stat.mode & 0o777).toString(8)})`,
    );
  }
  return file;
}

function describeEnd(label: string, result: ProcessResult, timeoutSeconds: number): string | undefined {
  if (result.spawnError !== undefined) return `${label} could not start: ${result.spawnError}`;
  if (result.timedOut) {
    return `${label} timed out after ${timeoutSeconds} s and was killed (${result.killedWith ?? 'SIGTERM'})`;
  }
  if (result.aborted) return `${label} was stopped (${result.killedWith ?? 'SIGTERM'})`;
  if (result.signal !== null) return `${label} was killed by ${result.signal}`;
  if (result.exitCode !== 0) return `${label} exited with code ${String(result.exitCode)}`;
  return undefined;
}

/**
 * Runs the steps of a Device Client document one after the other, as the Device Client does: the first
 * failing step (unless ignoreStepFailure) fails the job and skips the rest, finalStep included; finalStep
 * runs only after every step succeeded. Output tails span the whole job.
 */
export async function runSteps(
  doc: Extract<JobDocument, { kind: 'steps' }>,
  options: StepRunnerOptions,
): Promise<Outcome> {
  const actions = [...doc.steps, ...(doc.finalStep ? [doc.finalStep] : [])];
  const stdout = new TailBuffer();
  const stderr = new TailBuffer();
  let reason: string | undefined;
  let failedStep: string | undefined;
  for (let i = options.startAt; i < actions.length; i++) {
    const action = actions[i] as Action;
    if (options.signal.aborted) break;
    await options.beforeStep(i, action, actions.length);
    const label = `step ${i + 1}/${actions.length} "${action.name}"`;
    const timeoutSeconds = action.timeoutSeconds ?? options.defaultStepTimeoutSeconds;
    let failure: string | undefined;
    try {
      let file: string;
      let args: string[];
      if (action.type === 'runHandler') {
        file = await handlerFile(options.handlerDir, action.handler as string);
        // The Device Client passes runAsUser as the handler's first argument; its handlers expect it.
        args = [action.runAsUser ?? '', ...action.args];
      } else if (action.shell) {
        file = '/bin/sh';
        args = ['-c', (action.command as string[]).join(' ')];
      } else {
        [file, ...args] = action.command as [string, ...string[]];
      }
      const ids =
        action.runAsUser !== undefined && action.runAsUser !== userInfo().username
          ? lookupIds(action.runAsUser)
          : {};
      const result = await runProcess({
        file,
        args,
        ...ids,
        ...(options.handlerDir === undefined ? {} : { cwd: options.handlerDir }),
        timeoutMs: timeoutSeconds * 1000,
        signal: options.signal,
        killGraceMs: options.killGraceMs,
        stdout,
        stderr,
        onSpawn: (pid) => options.onSpawn?.(i, action, pid),
      });
      failure = describeEnd(label, result, timeoutSeconds);
    } catch (err) {
      failure = `${label} could not run: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (failure !== undefined && (!action.ignoreStepFailure || options.signal.aborted)) {
      reason = failure;
      failedStep = action.name;
      break;
    }
  }
  if (reason === undefined && options.signal.aborted) reason = 'the job was stopped';
  return {
    status: reason === undefined ? 'SUCCEEDED' : 'FAILED',
    statusDetails: toStatusDetails({
      reason,
      failedStep,
      stdout: doc.includeStdOut ? stdout.toString() : undefined,
      stderr: stderr.toString(),
    }),
  };
}
