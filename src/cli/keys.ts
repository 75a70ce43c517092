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
import { DEFAULT_TENANT_ID, listTenants, putTenant, requireTenant } from '../service/tenants.js';

export const KEYS_USAGE = `usage:
  fleetjobs keys create [--admin | --role admin|operator|viewer] [--tenant TENANT] [--description TEXT]
      create an operator API key and print it (shown only now); --admin recovers access when no admin key works;
      --tenant makes it a key of that tenant (default: the default tenant)
  fleetjobs keys list
      list operator keys of every tenant (id, role, status, created, tenant, description)
  fleetjobs keys revoke <accessKeyId>
      revoke a key (a tenant's last active admin key cannot be revoked)
  fleetjobs tenants create <tenantId> [--description TEXT]
      create a tenant, or replace its description (docs/tenants.md)
  fleetjobs tenants list
      list tenants

These talk to the store directly, like migrate: DATABASE_URL (or FLEETJOBS_DATA_DIR for the embedded PGlite,
with serve stopped: PGlite belongs to one process, and a running serve holds it) and the master key
(FLEETJOBS_MASTER_KEY or the data dir's master.key) are read as serve reads them; the server options
(--database-url ...) are accepted too.`;

export interface KeysIo {
  env: Record<string, string | undefined>;
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

interface KeysArgs {
  positional: string[];
  role: OperatorRole | undefined;
  tenant: string | undefined;
  description: string | undefined;
  /** Everything else: server options for loadConfig. */
  configFlags: string[];
}

function parseKeysArgs(argv: readonly string[]): KeysArgs {
  const out: KeysArgs = {
    positional: [],
    role: undefined,
    tenant: undefined,
    description: undefined,
    configFlags: [],
  };
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
    } else if (name === '--tenant') out.tenant = value();
    else if (name === '--description') out.description = value();
    else if (arg.startsWith('--')) {
      out.configFlags.push(arg);
      if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('--')) {
        out.configFlags.push(argv[++i] as string);
      }
    } else out.positional.push(arg);
  }
  return out;
}

const COMMANDS: Record<'keys' | 'tenants', string[]> = {
  keys: ['create', 'list', 'revoke'],
  tenants: ['create', 'list'],
};

/**
 * `fleetjobs keys create|list|revoke` and `fleetjobs tenants create|list`. Exit codes: 0 done, 1 the store refused,
 * 2 a usage or setting mistake.
 */
export async function runKeysCli(
  argv: readonly string[],
  io: KeysIo,
  group: 'keys' | 'tenants' = 'keys',
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out.write(`${KEYS_USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (!COMMANDS[group].includes(command)) {
    io.err.write(`unknown command ${group} ${command}\n\n${KEYS_USAGE}\n`);
    return 2;
  }
  const args = parseKeysArgs(rest);
  if (command === 'revoke' && args.positional.length !== 1) {
    io.err.write(`fleetjobs keys revoke needs one access key id\n`);
    return 2;
  }
  if (group === 'tenants' && command === 'create' && args.positional.length !== 1) {
    io.err.write(`fleetjobs tenants create needs one tenant id\n`);
    return 2;
  }
  const config = loadConfig(io.env, parseFlags(args.configFlags));
  // A data directory a running serve holds throws DataDirInUseError, which main prints in one line.
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
    if (group === 'tenants') return await tenantsCommand(deps, command, args, io);
    if (command === 'list') {
      let nextToken: string | undefined;
      io.out.write(
        'ACCESS KEY ID         ROLE      STATUS   CREATED                   TENANT            DESCRIPTION\n',
      );
      do {
        const page = await listOperatorKeys(deps, { nextToken, maxResults: 100 });
        for (const k of page.keys) {
          io.out.write(
            `${k.accessKeyId}  ${k.role.padEnd(8)}  ${k.status.padEnd(7)}  ${k.createdAt.toISOString()}  ${k.tenantId.padEnd(16)}  ${k.description ?? ''}\n`,
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
    const tenantId = args.tenant ?? DEFAULT_TENANT_ID;
    await requireTenant(deps, tenantId);
    const key = await createOperatorKey(deps, masterKey, {
      tenantId,
      role: args.role ?? 'operator',
      description:
        args.description ?? (args.role === 'admin' ? 'created by fleetjobs keys create' : undefined),
    });
    io.out.write(
      [
        `created ${key.role} key ${key.accessKeyId} of tenant ${key.tenantId}; it is shown only now.`,
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

async function tenantsCommand(
  deps: ServiceDeps,
  command: string,
  args: KeysArgs,
  io: KeysIo,
): Promise<number> {
  if (command === 'create') {
    const t = await putTenant(deps, {
      tenantId: args.positional[0] as string,
      description: args.description,
    });
    io.out.write(
      `${t.created ? 'created' : 'updated'} tenant ${t.tenantId}; make its first key with fleetjobs keys create --admin --tenant ${t.tenantId}\n`,
    );
    return 0;
  }
  let nextToken: string | undefined;
  io.out.write('TENANT            CREATED                   DESCRIPTION\n');
  do {
    const page = await listTenants(deps, { maxResults: 250, ...(nextToken ? { nextToken } : {}) });
    for (const t of page.tenants) {
      io.out.write(
        `${String(t.tenantId).padEnd(16)}  ${new Date(Number(t.createdAt) * 1000).toISOString()}  ${t.description ?? ''}\n`,
      );
    }
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return 0;
}
