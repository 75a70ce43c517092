import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ApiError, createApiClient } from './api-client.js';
import { executionsCommands } from './executions.js';
import { groupsCommands } from './groups.js';
import { jobsCommands } from './jobs.js';
import { schedulesCommands } from './schedules.js';
import { templatesCommands } from './templates.js';
import { thingsCommands } from './things.js';
import { UsageError, type CliIo, type CommandSpec, type Context } from './types.js';

export type { CliIo } from './types.js';

const GROUPS: Record<string, Record<string, CommandSpec>> = {
  jobs: jobsCommands,
  things: thingsCommands,
  groups: groupsCommands,
  executions: executionsCommands,
  templates: templatesCommands,
  schedules: schedulesCommands,
};

export const OPERATOR_GROUPS = Object.keys(GROUPS);

const GLOBAL_OPTIONS = {
  api: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const GLOBAL_USAGE = `options:
  --api URL      operator API (env FLEETJOBS_API, default http://127.0.0.1:8080)
  --token KEY    operator key, sent as Authorization: Bearer (env FLEETJOBS_TOKEN)
  --json         print the API's JSON instead of tables`;

function groupUsage(group: string): string {
  const commands = GROUPS[group] ?? {};
  const lines = Object.entries(commands).map(
    ([name, spec]) => `  fleetjobs ${group} ${name} ${spec.usage}\n      ${spec.summary}`,
  );
  return `usage:\n${lines.join('\n')}\n\n${GLOBAL_USAGE}`;
}

export function defaultCliIo(): CliIo {
  return {
    env: process.env,
    out: process.stdout,
    err: process.stderr,
    readFile: (p) => readFile(p, 'utf8'),
  };
}

/**
 * `fleetjobs jobs|things|groups|executions|templates|schedules <command> ...`: the operator CLI over the REST API. Exit codes: 0 success,
 * 1 the API refused or could not be reached (the server's message is printed), 2 a usage mistake, 3 a watched
 * job ended CANCELED, 4 a watched job completed with failed, timed-out or rejected executions.
 */
export async function runOperatorCli(argv: string[], io: CliIo = defaultCliIo()): Promise<number> {
  const [group, name, ...rest] = argv;
  const commands = group === undefined ? undefined : GROUPS[group];
  if (group === undefined || commands === undefined) {
    io.err.write(`unknown command ${group ?? ''}; the operator commands are ${OPERATOR_GROUPS.join(', ')}\n`);
    return 2;
  }
  const spec = name === undefined ? undefined : commands[name];
  if (spec === undefined) {
    const help = name === undefined || name === 'help' || name === '--help' || name === '-h';
    (help ? io.out : io.err).write(
      `${help ? '' : `unknown command ${group} ${name}\n\n`}${groupUsage(group)}\n`,
    );
    return help ? 0 : 2;
  }
  const usage = `usage: fleetjobs ${group} ${name} ${spec.usage}\n${GLOBAL_USAGE}\n`;
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...GLOBAL_OPTIONS, ...spec.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help === true) {
      io.out.write(`${spec.summary}\n${usage}`);
      return 0;
    }
    if (
      positionals.length < spec.positionals.min ||
      positionals.length > (spec.positionals.max ?? Infinity)
    ) {
      throw new UsageError(`wrong number of arguments`);
    }
    const api = (values.api as string | undefined) ?? io.env.FLEETJOBS_API ?? 'http://127.0.0.1:8080';
    if (!/^https?:\/\/[^/]+/.test(api))
      throw new UsageError(`--api must be an http:// or https:// URL, got ${api}`);
    const token = (values.token as string | undefined) ?? io.env.FLEETJOBS_TOKEN;
    const json = values.json === true;
    const ctx: Context = {
      client: createApiClient({ api, token: token === '' ? undefined : token }),
      io,
      json,
      print: (text) => io.out.write(`${text}\n`),
      printJson: (value) => io.out.write(`${JSON.stringify(value, null, 2)}\n`),
    };
    return await spec.run(ctx, positionals, values);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`${err.message}\n${usage}`);
      return 2;
    }
    if (err instanceof ApiError) {
      io.err.write(`error: ${err.errorType ? `${err.errorType}: ` : ''}${err.message}\n`);
      return 1;
    }
    if (
      (err as NodeJS.ErrnoException).code === 'ENOENT' ||
      (err as NodeJS.ErrnoException).code === 'EACCES'
    ) {
      io.err.write(`error: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}
