import { pino } from 'pino';
import { ConfigError, loadConfig, parseFlags } from '../config.js';
import { createPgliteDb, createPostgresDb, type Db } from '../store/db.js';
import { migrate } from '../store/migrate.js';
import { createTopicScheme } from '../protocol/topics.js';
import { isFleetJobsError } from '../protocol/errors.js';
import { loadMasterKey } from '../security.js';
import { databaseReachable, preflight } from '../preflight.js';
import type { ServiceDeps } from '../service/deps.js';
import {
  OPERATOR_ROLES,
  createOperatorKey,
  listOperatorKeys,
  revokeOperatorKeyById,
} from '../service/operator-keys.js';
import type { OperatorRole } from '../store/operator-keys.js';

export const KEYS_USAGE = `usage:
  fleetjobs keys create [--admin | --role admin|operator|viewer] [--description TEXT]
      create an operator API key and print it (shown only now); --admin recovers access when no admin key works
  fleetjobs keys list
      list operator keys (id, role, status, description)
  fleetjobs keys revoke <accessKeyId>
      revoke a key (the last active admin key cannot be revoked)

These talk to the store directly, like migrate: DATABASE_URL (or FLEETJOBS_DATA_DIR for the embedded PGlite,
with serve stopped: PGlite is one process's) and the master key (FLEETJOBS_MASTER_KEY or the data dir's
master.key) are read as serve reads them; the server options (--database-url ...) are accepted too.`;

export interface KeysIo {
  env: Record<string, string | undefined>;
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

interface KeysArgs {
  positional: string[];
  role: OperatorRole | undefined;
  description: string | undefined;
  /** Everything else: server options for loadConfig. */
  configFlags: string[];
}

function parseKeysArgs(argv: readonly string[]): KeysArgs {
  const out: KeysArgs = { positional: [], role: undefined, description: undefined, configFlags: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ConfigError(`${name} needs a value`);
      return v;
    };
    if (name === '--admin') out.role = 'admin';
    else if (name === '--role') {
      const role = value();
      if (!OPERATOR_ROLES.includes(role as OperatorRole)) {
        throw new ConfigError(`--role ${role} is not a role; use one of ${OPERATOR_ROLES.join(', ')}`);
      }
      out.role = role as OperatorRole;
    } else if (name === '--description') out.description = value();
    else if (arg.startsWith('--')) {
      out.configFlags.push(arg);
      if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('--')) {
        out.configFlags.push(argv[++i] as string);
      }
    } else out.positional.push(arg);
  }
  return out;
}

/** `fleetjobs keys create|list|revoke`. Exit codes: 0 done, 1 the store refused, 2 a usage or setting mistake. */
export async function runKeysCli(argv: readonly string[], io: KeysIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out.write(`${KEYS_USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (!['create', 'list', 'revoke'].includes(command)) {
    io.err.write(`unknown command keys ${command}\n\n${KEYS_USAGE}\n`);
    return 2;
  }
  const args = parseKeysArgs(rest);
  if (command === 'revoke' && args.positional.length !== 1) {
    io.err.write(`fleetjobs keys revoke needs one access key id\n`);
    return 2;
  }
  const config = loadConfig(io.env, parseFlags(args.configFlags));
  const db: Db = config.databaseUrl
    ? createPostgresDb({ url: config.databaseUrl, max: 1 })
    : await createPgliteDb({ dataDir: `${config.dataDir}/pglite` });
  try {
    await preflight([databaseReachable(config.databaseUrl, db)]);
    await migrate(db);
    const deps: ServiceDeps = {
      db,
      clock: () => new Date(),
      log: pino({ level: 'silent' }),
      arn: { region: config.awsRegion, accountId: config.awsAccountId },
      topics: createTopicScheme(config.jobsTopicRoot),
      outboxWritten: () => {},
    };
    if (command === 'list') {
      let nextToken: string | undefined;
      io.out.write('ACCESS KEY ID         ROLE      STATUS   CREATED                   DESCRIPTION\n');
      do {
        const page = await listOperatorKeys(deps, { nextToken, maxResults: 100 });
        for (const k of page.keys) {
          io.out.write(
            `${k.accessKeyId}  ${k.role.padEnd(8)}  ${k.status.padEnd(7)}  ${k.createdAt.toISOString()}  ${k.description ?? ''}\n`,
          );
        }
        nextToken = page.nextToken;
      } while (nextToken !== undefined);
      return 0;
    }
    if (command === 'revoke') {
      const key = await revokeOperatorKeyById(deps, args.positional[0] as string);
      io.out.write(`revoked ${key.accessKeyId} (${key.role})\n`);
      return 0;
    }
    const masterKey = await loadMasterKey(config, true);
    if (masterKey === undefined) throw new ConfigError('no master key; set FLEETJOBS_MASTER_KEY');
    const key = await createOperatorKey(deps, masterKey, {
      role: args.role ?? 'operator',
      description:
        args.description ?? (args.role === 'admin' ? 'created by fleetjobs keys create' : undefined),
    });
    io.out.write(
      [
        `created ${key.role} key ${key.accessKeyId}; it is shown only now.`,
        `  export FLEETJOBS_TOKEN=${key.token}`,
        `  AWS SDK (SigV4): AWS_ACCESS_KEY_ID=${key.accessKeyId} AWS_SECRET_ACCESS_KEY=${key.secretAccessKey}`,
        '',
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    if (isFleetJobsError(err)) {
      io.err.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await db.close();
  }
}
