import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfig, parseFlags } from '../config.js';
import { createPgliteDb, createPostgresDb, loadPglite } from '../store/db.js';
import { DataDirInUseError } from '../store/data-dir-lock.js';
import { migrate } from '../store/migrate.js';
import { databaseReachable, preflight } from '../preflight.js';
import { createCliLogger } from './logger.js';
import { serveUsage } from './serve-help.js';

const USAGE = `usage: fleetjobs <command> [options]

commands:
  serve     run migrations, the MQTT broker, the jobs service, the workers and the operator API
  migrate   apply database migrations and exit
  jobs      create, cancel, describe, list, watch, delete jobs (over the REST API; fleetjobs jobs help)
  things    create, describe, list, delete things; credentials create, rotate, list, revoke
  groups    create, add, remove, list, members of thing groups
  keys      create, list, revoke operator API keys (on the store directly; fleetjobs keys help)
  tenants   create, list tenants (on the store directly; fleetjobs keys help)
  executions list, describe (for a job or a thing: which device failed?); dead-letters, retry
  templates  list, versions, create-version, export, import job templates
  schedules  put, describe, list, pause, resume, delete, runs of recurring jobs
  agent     run the device agent for one thing (fleetjobs agent --help)

options:
  --version   print the version
  --help      this text; fleetjobs serve --help lists every serve flag

Every serve option is also an environment variable: --http-port 8080 is HTTP_PORT=8080 (see README).`;

/** The version in the package.json next to the sources (src/cli) or the build (dist/src/cli). */
async function version(): Promise<string> {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'fleetjobs' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: try the next level up
    }
  }
  return 'unknown';
}

async function serve(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(serveUsage());
    return 0;
  }
  const config = loadConfig(process.env, parseFlags(argv));
  // PGlite's WebAssembly compiles on background threads while the main thread loads the server's modules; a
  // failure here is met again, and reported, when the server opens the database.
  if (config.databaseUrl === undefined) loadPglite().catch(() => undefined);
  const { createFleetJobs } = await import('../app.js');
  const log = createCliLogger(config, process.stdout);
  const app = await createFleetJobs({
    config,
    logger: log,
    security: {
      // [protocol §5] Printed once, on stdout rather than in the log, which may be shipped elsewhere.
      onAdminKeyCreated: (key, file) =>
        console.log(
          [
            'fleetjobs created the first admin key; it is shown only now.',
            `  export FLEETJOBS_TOKEN=${key.token}`,
            `  AWS SDK (SigV4): AWS_ACCESS_KEY_ID=${key.accessKeyId} AWS_SECRET_ACCESS_KEY=${key.secretAccessKey}`,
            ...(file ? [`  a copy readable only by this user is in ${file}`] : []),
            'Create more keys with POST /operator-keys; revoke this one once you have another admin key.',
          ].join('\n'),
        ),
    },
  });
  await app.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  return 0;
}

async function migrateCommand(argv: string[]): Promise<number> {
  const config = loadConfig(process.env, parseFlags(argv));
  const db = config.databaseUrl
    ? createPostgresDb({ url: config.databaseUrl, max: 1 })
    : await createPgliteDb({ dataDir: `${config.dataDir}/pglite` });
  try {
    await preflight([databaseReachable(config.databaseUrl, db)]);
    const result = await migrate(db);
    console.log(
      result.applied.length > 0
        ? `applied ${result.applied.join(', ')}`
        : `already at migration ${result.current}`,
    );
  } finally {
    await db.close();
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'jobs':
      case 'things':
      case 'groups':
      case 'executions':
      case 'templates':
      case 'schedules':
        // Imported by the command that needs it: `serve` starts without the other commands' modules.
        return await (await import('./commands/index.js')).runOperatorCli(argv);
      case 'migrate':
        return await migrateCommand(rest);
      case 'keys':
        return await (
          await import('./keys.js')
        ).runKeysCli(rest, { env: process.env, out: process.stdout, err: process.stderr });
      case 'tenants':
        return await (
          await import('./keys.js')
        ).runKeysCli(rest, { env: process.env, out: process.stdout, err: process.stderr }, 'tenants');
      case 'agent':
        return await (await import('../../agent/cli.js')).runAgentCli(rest, process.env);
      case '--version':
      case '-v':
      case 'version':
        console.log(`fleetjobs ${await version()}`);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        console.error(`unknown command ${command}\n\n${USAGE}`);
        return 1;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    if (err instanceof DataDirInUseError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}
