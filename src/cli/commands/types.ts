import type { ParseArgsConfig } from 'node:util';
import type { ApiClient } from './api-client.js';

/** Where the operator CLI reads its settings and writes its output; tests pass their own. */
export interface CliIo {
  env: Record<string, string | undefined>;
  out: { write(text: string): unknown; isTTY?: boolean };
  err: { write(text: string): unknown };
  readFile(path: string): Promise<string>;
  /** Aborted to stop a long-running command (jobs watch) early, e.g. on SIGINT. */
  signal?: AbortSignal;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Context {
  client: ApiClient;
  io: CliIo;
  json: boolean;
  /** One line (or block) to stdout. */
  print(text: string): void;
  /** A value as indented JSON to stdout (--json). */
  printJson(value: unknown): void;
}

export interface CommandSpec {
  /** Arguments after the command name, e.g. `<jobId> [--force]`. */
  usage: string;
  summary: string;
  /** Positional arguments: at least min, at most max (undefined: no upper bound). */
  positionals: { min: number; max?: number };
  options?: NonNullable<ParseArgsConfig['options']>;
  run(ctx: Context, args: string[], values: OptionValues): Promise<number>;
}

/** A usage mistake: printed with the command's usage line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
