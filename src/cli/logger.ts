import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config.js';

const require = createRequire(import.meta.url);

/**
 * The logger of `fleetjobs serve`, writing to `out` (stdout): with LOG_FORMAT=auto, pretty on a terminal and JSON
 * lines anywhere else (a file, a pipe, a log shipper).
 */
export function createCliLogger(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
  out: DestinationStream & { isTTY?: boolean },
): Logger {
  const format = config.logFormat === 'auto' ? (out.isTTY === true ? 'pretty' : 'json') : config.logFormat;
  if (format === 'json') return pino({ level: config.logLevel }, out);
  // Loaded only for a pretty log, which a service under a supervisor (JSON lines) does not pay for at start.
  const { prettyFactory } = require('pino-pretty') as typeof import('pino-pretty');
  // Formatted in the writing thread, line by line: no worker thread to start or to flush at exit.
  const prettify = prettyFactory({ colorize: out.isTTY === true, translateTime: 'SYS:HH:MM:ss.l' });
  return pino({ level: config.logLevel }, { write: (line: string) => out.write(prettify(line)) });
}
