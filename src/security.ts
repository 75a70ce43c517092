import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { createAuthenticateHook } from '../broker/auth.js';
import { createTopicAcl } from '../broker/acl.js';
import type { BrokerHooks } from '../broker/index.js';
import { ConfigError, type Config } from './config.js';
import { createDeviceAuthenticator, type DeviceAuthenticator } from './service/credentials.js';
import type { ServiceDeps } from './service/deps.js';
import {
  ACCESS_KEY_ID_PATTERN,
  bootstrapAdminKey,
  createOperatorKeyResolver,
  masterKeyMatchesStore,
  type CreatedOperatorKey,
  type OperatorKeyResolver,
} from './service/operator-keys.js';

/**
 * [protocol §5] Security wiring for createFleetJobs: the master key, device and operator authentication, the topic ACL
 * and the first admin key. AUTH_MODE=off (loopback only, checked by loadConfig) skips authentication; the ACL
 * still confines clients that have an identity (an mTLS certificate).
 */
export interface SecurityOptions {
  /** Overrides FLEETJOBS_MASTER_KEY and the key file (tests). */
  masterKey?: Buffer;
  /** Called once when the first serve on an empty store creates the admin key; the CLI prints it. */
  onAdminKeyCreated?: (key: CreatedOperatorKey, file: string | undefined) => void;
  /** Write the first admin key into FLEETJOBS_DATA_DIR (0600); default: with the embedded store only. */
  writeAdminKeyFile?: boolean;
}

export interface Security {
  readonly masterKey: Buffer | undefined;
  readonly operatorKeys: OperatorKeyResolver | undefined;
  readonly devices: DeviceAuthenticator;
  brokerHooks(): Pick<BrokerHooks, 'authenticate' | 'authorizeSubscribe'>;
  /** False when the ACL forbids the publish (the broker then refuses it and disconnects the client). */
  canPublish(identity: string | undefined, topic: string): boolean;
  /** After migrations: check the master key against the store. */
  start(): Promise<void>;
  /**
   * Once the service has started (listeners bound, store answering): on a store without operator keys, creates
   * the first admin key, writes it to the data dir and hands it to onAdminKeyCreated. A start that failed before
   * this leaves no key behind; `fleetjobs keys create --admin` recovers access in any case.
   */
  createFirstAdminKey(): Promise<void>;
}

const MASTER_KEY_FILE = 'master.key';
export const ADMIN_KEY_FILE = 'admin-key.json';

export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const key =
    /^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0 ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length < 32) {
    throw new ConfigError(
      'FLEETJOBS_MASTER_KEY must be at least 32 bytes, hex or base64; generate one with `openssl rand -base64 32`',
    );
  }
  return key;
}

/** The key from the environment, else FLEETJOBS_DATA_DIR/master.key, created (0600) when `create`. */
export async function loadMasterKey(config: Config, create: boolean): Promise<Buffer | undefined> {
  if (config.masterKey !== undefined) return parseMasterKey(config.masterKey);
  const file = join(config.dataDir, MASTER_KEY_FILE);
  try {
    return parseMasterKey(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!create) return undefined;
  await mkdir(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

/** Writes a created key as JSON, readable only by this user; refuses to overwrite an existing file. */
export async function writeAdminKeyFile(file: string, key: CreatedOperatorKey): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const body = {
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    token: key.token,
    role: key.role,
  };
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
}

export async function createSecurity(
  config: Config,
  deps: ServiceDeps,
  options: SecurityOptions,
): Promise<Security> {
  const required = config.authMode === 'required';
  const masterKey = options.masterKey ?? (await loadMasterKey(config, required));
  const operatorKeys = masterKey === undefined ? undefined : createOperatorKeyResolver(deps, masterKey);
  const devices = createDeviceAuthenticator(deps);
  const acl = createTopicAcl(deps.topics);
  const log: Logger = deps.log;
  const writeKeyFile = options.writeAdminKeyFile ?? config.databaseUrl === undefined;

  return {
    masterKey,
    operatorKeys,
    devices,
    brokerHooks() {
      const authorizeSubscribe = (client: { identity: string | undefined }, filter: string) =>
        acl.canSubscribe(client.identity, filter);
      if (!required) return { authorizeSubscribe };
      return {
        authorizeSubscribe,
        authenticate: createAuthenticateHook({
          verifyDevice: async (thingName, secret) => (await devices.verify(thingName, secret)).ok,
          verifyOperator: async (accessKeyId, secret) => {
            if (operatorKeys === undefined || !ACCESS_KEY_ID_PATTERN.test(accessKeyId)) return undefined;
            return (await operatorKeys.byBearer(`${accessKeyId}.${secret}`)) !== undefined;
          },
        }),
      };
    },
    canPublish: (identity, topic) => acl.canPublish(identity, topic),
    async start() {
      if (!required) {
        log.warn(
          'AUTH_MODE=off: the operator API and the broker accept anyone who can reach them; listeners are bound to loopback only',
        );
        return;
      }
      if (masterKey === undefined) return;
      if (!(await masterKeyMatchesStore(deps, masterKey))) {
        log.error(
          'the master key does not match the operator keys in the store: SigV4 and bearer keys will be refused; restore FLEETJOBS_MASTER_KEY or the master.key file',
        );
      }
    },
    async createFirstAdminKey() {
      if (!required || masterKey === undefined) return;
      const created = await bootstrapAdminKey(deps, masterKey);
      if (created !== undefined) {
        let file: string | undefined;
        if (writeKeyFile) {
          file = resolve(config.dataDir, ADMIN_KEY_FILE);
          try {
            await writeAdminKeyFile(file, created);
          } catch (err) {
            // The key is printed below all the same: it must not be lost with the file.
            log.error(
              { err, file },
              'could not write the first admin key file; the key is printed on stdout only',
            );
            file = undefined;
          }
        }
        options.onAdminKeyCreated?.(created, file);
      }
      log.info(
        writeKeyFile
          ? `the operator API needs a key: send Authorization: Bearer <token>; the first admin key is in ${resolve(config.dataDir, ADMIN_KEY_FILE)}`
          : 'the operator API needs a key: send Authorization: Bearer <token>; the first admin key was printed by the first serve',
      );
    },
  };
}
