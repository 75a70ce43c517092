import { readFile } from 'node:fs/promises';
import { runOperatorCli, type CliIo } from '../../src/cli/commands/index.js';

/** What a REST call answered: status, the AWS error name (x-amzn-ErrorType) and the parsed body. */
export interface RestAnswer {
  status: number;
  error: string | null;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * The operator's two entry points against a running server, for tests: REST calls and the `fleetjobs` operator
 * CLI (in-process, output captured). The base URL is read at each call, so a test may restart its server.
 */
export function operatorClient(baseUrl: () => string) {
  const rest = async (method: string, path: string, body?: object): Promise<RestAnswer> => {
    const res = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      error: res.headers.get('x-amzn-errortype'),
      body: text === '' ? {} : (JSON.parse(text) as RestAnswer['body']),
    };
  };
  const cli = async (argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const io: CliIo = {
      env: { FLEETJOBS_API: baseUrl() },
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (err += s) },
      readFile: (p) => readFile(p, 'utf8'),
    };
    const code = await runOperatorCli(argv, io);
    return { code, out, err };
  };
  return { rest, cli };
}
