/**
 * Job documents the agent runs ([protocol §7]):
 * - AWS IoT Device Client documents, `version` "1.0": `steps` (and an optional `finalStep`) of `runHandler`
 *   (a handler file from the handler directory, called with runAsUser then args, as the Device Client does)
 *   and `runCommand` (`input.command` split at commas, `\,` for a literal comma, no shell); the old schema
 *   (`operation` naming a handler file, `args`) is read as one runHandler step.
 * - `{ "operation": name, ... }` where name is a handler function registered with the agent.
 * Extensions, all optional: `input.shell: true` runs `input.command` verbatim with /bin/sh -c;
 * `timeoutSeconds` on an action bounds the step; `onRestart` on an action says what to do when the agent
 * restarts while that step runs: "fail" (default: its outcome is unknown), "continue" (count it as done:
 * a reboot step) or "rerun".
 */

export type OnRestart = 'fail' | 'continue' | 'rerun';

export interface Action {
  name: string;
  type: 'runHandler' | 'runCommand';
  /** runHandler: the file name in the handler directory. */
  handler?: string;
  /** runCommand: argv (command[0] is the program), or one shell line when shell is true. */
  command?: string[];
  shell?: boolean;
  args: string[];
  runAsUser?: string;
  ignoreStepFailure: boolean;
  timeoutSeconds?: number;
  onRestart: OnRestart;
}

export type JobDocument =
  | { kind: 'steps'; includeStdOut: boolean; steps: Action[]; finalStep?: Action }
  | { kind: 'operation'; operation: string };

export class InvalidDocumentError extends Error {}

const HANDLER_NAME = /^(?!\.\.?$)[A-Za-z0-9._-]{1,255}$/;
const MAX_TIMEOUT_SECONDS = 10_080 * 60;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The Device Client writes booleans as "true"/"false" strings; accept those and real booleans. */
function flag(value: unknown, where: string): boolean {
  if (value === undefined) return false;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new InvalidDocumentError(`${where} must be true or false`);
}

function stringArray(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new InvalidDocumentError(`${where} must be an array of strings`);
  }
  return value as string[];
}

/** Device Client command syntax: arguments separated by commas, `\,` is a comma inside an argument. */
export function splitCommand(line: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && line[i + 1] === ',') {
      current += ',';
      i++;
    } else if (c === ',') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function handlerName(value: unknown, where: string): string {
  if (typeof value !== 'string' || !HANDLER_NAME.test(value)) {
    throw new InvalidDocumentError(`${where} must be a file name in the handler directory (no path)`);
  }
  return value;
}

function handlerPath(value: unknown, where: string): void {
  // Handlers run only from the agent's handler directory: a document cannot point at other executables.
  if (value !== undefined && value !== 'default') {
    throw new InvalidDocumentError(`${where} may only be "default"; handlers run from the handler directory`);
  }
}

function parseAction(value: unknown, where: string): Action {
  if (!isObject(value)) throw new InvalidDocumentError(`${where} must be an object`);
  const { name, type, input } = value;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new InvalidDocumentError(`${where}.name is required`);
  }
  if (type !== 'runHandler' && type !== 'runCommand') {
    throw new InvalidDocumentError(`${where}.type must be runHandler or runCommand`);
  }
  if (!isObject(input)) throw new InvalidDocumentError(`${where}.input is required`);
  if (value.runAsUser !== undefined && (typeof value.runAsUser !== 'string' || value.runAsUser === '')) {
    throw new InvalidDocumentError(`${where}.runAsUser must be a user name`);
  }
  const timeout = value.timeoutSeconds;
  if (
    timeout !== undefined &&
    (typeof timeout !== 'number' || !(timeout > 0) || timeout > MAX_TIMEOUT_SECONDS)
  ) {
    throw new InvalidDocumentError(`${where}.timeoutSeconds must be a number of seconds, at most 7 days`);
  }
  const onRestart = value.onRestart ?? 'fail';
  if (onRestart !== 'fail' && onRestart !== 'continue' && onRestart !== 'rerun') {
    throw new InvalidDocumentError(`${where}.onRestart must be fail, continue or rerun`);
  }
  const action: Action = {
    name,
    type,
    args: [],
    ignoreStepFailure: flag(value.ignoreStepFailure, `${where}.ignoreStepFailure`),
    onRestart,
    ...(typeof value.runAsUser === 'string' ? { runAsUser: value.runAsUser } : {}),
    ...(typeof timeout === 'number' ? { timeoutSeconds: timeout } : {}),
  };
  if (type === 'runHandler') {
    action.handler = handlerName(input.handler, `${where}.input.handler`);
    action.args = stringArray(input.args, `${where}.input.args`);
    handlerPath(input.path, `${where}.input.path`);
    return action;
  }
  action.shell = flag(input.shell, `${where}.input.shell`);
  const command = input.command;
  if (Array.isArray(command)) {
    action.command = stringArray(command, `${where}.input.command`);
  } else if (typeof command === 'string' && command !== '') {
    action.command = action.shell ? [command] : splitCommand(command);
  } else {
    throw new InvalidDocumentError(`${where}.input.command is required`);
  }
  const program = action.command[0];
  if (program === undefined || program === '' || (!action.shell && /\s/.test(program))) {
    throw new InvalidDocumentError(
      `${where}.input.command must start with a program name without spaces (arguments are separated by commas)`,
    );
  }
  return action;
}

function parseStep(value: unknown, where: string): Action {
  // Device Client wraps each step as { "action": {...} }.
  if (!isObject(value) || !isObject(value.action)) {
    throw new InvalidDocumentError(`${where} must be an object with an action`);
  }
  return parseAction(value.action, `${where}.action`);
}

/**
 * Reads a job document; throws InvalidDocumentError, whose message becomes the REJECTED reason.
 * `operations` are the names of the registered handler functions.
 */
export function parseJobDocument(doc: unknown, operations: ReadonlySet<string>): JobDocument {
  if (!isObject(doc)) throw new InvalidDocumentError('the job document must be a JSON object');
  // A registered operation wins whatever else the document holds (its own `version` field, say).
  if (typeof doc.operation === 'string' && operations.has(doc.operation)) {
    return { kind: 'operation', operation: doc.operation };
  }
  if (doc.version === undefined) {
    const operation = doc.operation;
    if (typeof operation !== 'string' || operation === '') {
      throw new InvalidDocumentError('the job document needs "version": "1.0" with steps, or an "operation"');
    }
    handlerPath(doc.path, 'path');
    return {
      kind: 'steps',
      includeStdOut: flag(doc.includeStdOut, 'includeStdOut'),
      steps: [
        {
          name: operation,
          type: 'runHandler',
          handler: handlerName(operation, `operation ${operation} is not a registered handler, and`),
          args: stringArray(doc.args, 'args'),
          ignoreStepFailure: false,
          onRestart: 'fail',
        },
      ],
    };
  }
  if (doc.version !== '1.0') {
    throw new InvalidDocumentError(`version ${JSON.stringify(doc.version)} is not supported; use "1.0"`);
  }
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) {
    throw new InvalidDocumentError('steps must be a non-empty array');
  }
  const steps = doc.steps.map((s, i) => parseStep(s, `steps[${i}]`));
  const finalStep = doc.finalStep === undefined ? undefined : parseStep(doc.finalStep, 'finalStep');
  return {
    kind: 'steps',
    includeStdOut: flag(doc.includeStdOut, 'includeStdOut'),
    steps,
    ...(finalStep ? { finalStep } : {}),
  };
}
