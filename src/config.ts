import { validateTopicRoot, DEFAULT_TOPIC_ROOT } from './protocol/topics.js';

/**
 * [protocol §2] Configuration: every setting has an env var and the same `serve` flag (--http-port for HTTP_PORT).
 * Precedence: flag, then env, then default. Validated once at start; a bad value is a ConfigError whose one-line
 * message names the variable and the fix.
 */
export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  /** FLEETJOBS_MASTER_KEY: base64 or hex, at least 32 bytes; unset -> FLEETJOBS_DATA_DIR/master.key. */
  masterKey: string | undefined;
  httpHost: string;
  httpPort: number;
  mqttHost: string;
  mqttPort: number;
  mqttsPort: number | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsCa: string | undefined;
  mqttWsPort: number | undefined;
  deviceHttpPort: number | undefined;
  mqttUrl: string | undefined;
  /** REDIS_URL: cluster mode, every node sharing this Redis for MQTT sessions and fan-out (needs DATABASE_URL). */
  redisUrl: string | undefined;
  jobsTopicRoot: string;
  authMode: 'required' | 'off';
  logLevel: string;
  /** LOG_FORMAT: `auto` is pretty when stdout is a terminal and JSON lines otherwise (decided by the CLI). */
  logFormat: 'auto' | 'json' | 'pretty';
  /** DEVICE_RATE_LIMIT `rate[/burst]`: per-thing device requests per second (default LIMITS). */
  deviceRateLimit: { perSecond: number; burst: number } | undefined;
  /** OPERATOR_RATE_LIMIT `rate[/burst]`: REST requests per second per operator key (default LIMITS). */
  operatorRateLimit: { perSecond: number; burst: number } | undefined;
  awsRegion: string;
  awsAccountId: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Source = Record<string, string | undefined>;

export const CONFIG_VARS = [
  'DATABASE_URL',
  'FLEETJOBS_DATA_DIR',
  'FLEETJOBS_MASTER_KEY',
  'HTTP_HOST',
  'HTTP_PORT',
  'MQTT_HOST',
  'MQTT_PORT',
  'MQTTS_PORT',
  'TLS_CERT',
  'TLS_KEY',
  'TLS_CA',
  'MQTT_WS_PORT',
  'DEVICE_HTTP_PORT',
  'MQTT_URL',
  'REDIS_URL',
  'JOBS_TOPIC_ROOT',
  'AUTH_MODE',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'DEVICE_RATE_LIMIT',
  'OPERATOR_RATE_LIMIT',
  'AWS_REGION',
  'AWS_ACCOUNT_ID',
] as const;
export type ConfigVar = (typeof CONFIG_VARS)[number];
type Var = ConfigVar;
const VARS = CONFIG_VARS;

/** DATABASE_URL <-> --database-url */
export function flagName(v: Var): string {
  return `--${v.toLowerCase().replace(/_/g, '-')}`;
}

/** Parses `--name value` and `--name=value` flags into env-style keys; unknown flags are an error. */
export function parseFlags(argv: readonly string[]): Source {
  const known = new Map(VARS.map((v) => [flagName(v), v]));
  const out: Source = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const v = known.get(name);
    if (!v) throw new ConfigError(`unknown option ${name}; the options are ${[...known.keys()].join(' ')}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${name} needs a value`);
    out[v] = value;
  }
  return out;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function port(v: Var, raw: string | undefined, fallback?: number): number | undefined {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError(
      `${v}=${raw} is not a port; set ${v} to a number from 0 to 65535 (0 picks a free port)`,
    );
  }
  return Number(raw);
}

/** `100` or `100/200`: a sustained rate per second and an optional burst (default: twice the rate). */
function rateLimit(v: Var, raw: string | undefined): { perSecond: number; burst: number } | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+))?$/.exec(raw);
  const perSecond = Number(m?.[1]);
  const burst = m?.[2] === undefined ? Math.max(1, Math.ceil(perSecond * 2)) : Number(m[2]);
  if (!m || !(perSecond > 0) || !(burst >= 1)) {
    throw new ConfigError(
      `${v}=${raw} is not a rate; set ${v} to requests per second, optionally /burst (e.g. 100/200)`,
    );
  }
  return { perSecond, burst };
}

export function loadConfig(env: Source, flags: Source = {}): Config {
  const get = (v: Var): string | undefined => {
    const value = flags[v] ?? env[v];
    return value === '' ? undefined : value;
  };
  const databaseUrl = get('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(
      `DATABASE_URL must start with postgres:// or postgresql://; unset it to use the embedded PGlite`,
    );
  }
  const mqttUrl = get('MQTT_URL');
  if (mqttUrl !== undefined && !/^(mqtts?|wss?|tcp|ssl):\/\/[^/]+/.test(mqttUrl)) {
    throw new ConfigError(
      `MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883; unset it to run the embedded broker`,
    );
  }
  const redisUrl = get('REDIS_URL');
  if (redisUrl !== undefined) {
    if (!/^rediss?:\/\/[^/]+/.test(redisUrl)) {
      throw new ConfigError(
        'REDIS_URL must look like redis://host:6379 or rediss://host:6380 (optionally /db); unset it to run a single node',
      );
    }
    if (databaseUrl === undefined) {
      throw new ConfigError(
        'REDIS_URL (cluster mode) needs DATABASE_URL: the nodes share one PostgreSQL, and the embedded PGlite belongs to one process; set DATABASE_URL or unset REDIS_URL',
      );
    }
    if (mqttUrl !== undefined) {
      throw new ConfigError(
        'REDIS_URL clusters the embedded broker and MQTT_URL replaces it; unset one (with MQTT_URL the external broker is the cluster)',
      );
    }
  }
  const jobsTopicRoot = get('JOBS_TOPIC_ROOT') ?? DEFAULT_TOPIC_ROOT;
  const rootProblem = validateTopicRoot(jobsTopicRoot);
  if (rootProblem)
    throw new ConfigError(`JOBS_TOPIC_ROOT ${rootProblem}; the default is ${DEFAULT_TOPIC_ROOT}`);
  const authMode = get('AUTH_MODE') ?? 'required';
  if (authMode !== 'required' && authMode !== 'off') {
    throw new ConfigError(`AUTH_MODE=${authMode} is not valid; set AUTH_MODE to required or off`);
  }
  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL=${logLevel} is not valid; set LOG_LEVEL to one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const logFormat = get('LOG_FORMAT') ?? 'auto';
  if (logFormat !== 'auto' && logFormat !== 'json' && logFormat !== 'pretty') {
    throw new ConfigError(`LOG_FORMAT=${logFormat} is not valid; set LOG_FORMAT to auto, json or pretty`);
  }
  const accountId = get('AWS_ACCOUNT_ID') ?? '000000000000';
  if (!/^\d{12}$/.test(accountId)) throw new ConfigError(`AWS_ACCOUNT_ID must be 12 digits`);
  const region = get('AWS_REGION') ?? 'local';
  if (!/^[a-z0-9-]{1,32}$/.test(region))
    throw new ConfigError(`AWS_REGION must be lower-case letters, digits and -`);

  const tlsCert = get('TLS_CERT');
  const tlsKey = get('TLS_KEY');
  const mqttsPort = port('MQTTS_PORT', get('MQTTS_PORT'));
  if (mqttsPort !== undefined && (tlsCert === undefined || tlsKey === undefined)) {
    throw new ConfigError(
      'MQTTS_PORT needs TLS_CERT and TLS_KEY (PEM file paths); set both or unset MQTTS_PORT',
    );
  }
  const config: Config = {
    databaseUrl,
    dataDir: get('FLEETJOBS_DATA_DIR') ?? './data',
    masterKey: get('FLEETJOBS_MASTER_KEY'),
    httpHost: get('HTTP_HOST') ?? '127.0.0.1',
    httpPort: port('HTTP_PORT', get('HTTP_PORT'), 8080) as number,
    mqttHost: get('MQTT_HOST') ?? '127.0.0.1',
    mqttPort: port('MQTT_PORT', get('MQTT_PORT'), 1883) as number,
    mqttsPort,
    tlsCert,
    tlsKey,
    tlsCa: get('TLS_CA'),
    mqttWsPort: port('MQTT_WS_PORT', get('MQTT_WS_PORT')),
    deviceHttpPort: port('DEVICE_HTTP_PORT', get('DEVICE_HTTP_PORT')),
    mqttUrl,
    redisUrl,
    jobsTopicRoot,
    authMode,
    logLevel,
    logFormat,
    deviceRateLimit: rateLimit('DEVICE_RATE_LIMIT', get('DEVICE_RATE_LIMIT')),
    operatorRateLimit: rateLimit('OPERATOR_RATE_LIMIT', get('OPERATOR_RATE_LIMIT')),
    awsRegion: region,
    awsAccountId: accountId,
  };
  if (config.authMode === 'off') {
    const hosts = [config.httpHost, config.mqttHost];
    const open = hosts.find((h) => !isLoopback(h));
    if (open !== undefined) {
      throw new ConfigError(
        `AUTH_MODE=off is refused while a listener binds to ${open}; bind HTTP_HOST and MQTT_HOST to 127.0.0.1 or set AUTH_MODE=required`,
      );
    }
  }
  return config;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
