import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import net from 'node:net';
import { ConfigError } from './config.js';
import { pgErrorCode, type Db } from './store/db.js';

/**
 * Start-up checks of the settings that name something outside the process (a database, a broker, a file). They
 * run before anything is created (data dir, master key, migrations, listeners), and a failed one stops start-up
 * with one line naming the variable and the fix. A new external dependency adds a check here:
 * `{ variable: 'REDIS_URL', run: () => tcpReachable('REDIS_URL', url, 6379, 'start Redis or fix REDIS_URL') }`.
 */
export interface PreflightCheck {
  variable: string;
  /** Resolves with the problem (the whole line, naming the variable and the fix), or undefined when fine. */
  run(): Promise<string | undefined>;
}

/** Runs the checks together; throws a ConfigError with the first failed check's line (in the given order). */
export async function preflight(checks: readonly PreflightCheck[]): Promise<void> {
  const problems = await Promise.all(
    checks.map((c) => c.run().catch((err: unknown) => `${c.variable}: ${(err as Error).message}`)),
  );
  const first = problems.find((p) => p !== undefined);
  if (first !== undefined) throw new ConfigError(first);
}

/** TLS_CERT=/path and the like: the file must exist and be readable. */
export function readableFile(variable: string, path: string | undefined): PreflightCheck {
  return {
    variable,
    async run() {
      if (path === undefined) return undefined;
      try {
        await access(path, constants.R_OK);
        return undefined;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const what = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`;
        return `${variable}=${path} ${what}; set ${variable} to a readable PEM file`;
      }
    },
  };
}

/** host:port of a URL accepts a TCP connection within timeoutMs. */
export function tcpReachable(
  variable: string,
  url: string | undefined,
  defaultPort: number,
  fix: string,
  timeoutMs = 5000,
): PreflightCheck {
  return {
    variable,
    run: () =>
      new Promise((resolve) => {
        if (url === undefined) return resolve(undefined);
        const u = new URL(url);
        const host = u.hostname.replace(/^\[|\]$/g, '') || 'localhost';
        const port = Number(u.port || defaultPort);
        const socket = net.connect(port, host);
        const done = (problem: string | undefined) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(problem);
        };
        const timer = setTimeout(
          () => done(`${variable}: ${host}:${port} did not answer within ${timeoutMs} ms; ${fix}`),
          timeoutMs,
        );
        socket.once('connect', () => done(undefined));
        socket.once('error', (err: NodeJS.ErrnoException) =>
          done(`${variable}: cannot connect to ${host}:${port} (${err.code ?? err.message}); ${fix}`),
        );
      }),
  };
}

/** DATABASE_URL: the server answers, the credentials are accepted and the database exists. */
export function databaseReachable(url: string | undefined, db: Db): PreflightCheck {
  return {
    variable: 'DATABASE_URL',
    async run() {
      if (url === undefined) return undefined;
      let where: string;
      try {
        const u = new URL(url);
        where = `PostgreSQL at ${u.hostname}:${u.port || 5432}, database ${u.pathname.slice(1) || u.username}`;
      } catch {
        return 'DATABASE_URL is not a valid URL; set it to postgres://user:password@host:5432/database';
      }
      try {
        await db.query('SELECT 1');
        return undefined;
      } catch (err) {
        const c = pgErrorCode(err) ?? pgErrorCode((err as { cause?: unknown }).cause);
        if (c === '28P01' || c === '28000') {
          return `DATABASE_URL: ${where} refused the user name or password; fix the credentials in DATABASE_URL`;
        }
        if (c === '3D000') {
          return `DATABASE_URL: ${where} does not exist; create it (createdb) or fix the database name in DATABASE_URL`;
        }
        return `DATABASE_URL: cannot reach ${where} (${c ?? (err as Error).message}); start PostgreSQL or fix the host and port in DATABASE_URL`;
      }
    },
  };
}
