import { CONFIG_VARS, flagName, type ConfigVar } from '../config.js';

/** One line per setting; typed by the config's own list, so a new setting cannot be left out of --help. */
const HELP: Record<ConfigVar, string> = {
  DATABASE_URL: 'PostgreSQL connection string; unset: embedded PGlite in the data dir',
  FLEETJOBS_DATA_DIR: 'PGlite files and generated secrets (default ./data)',
  FLEETJOBS_MASTER_KEY:
    'key that protects operator keys, base64 or hex, 32+ bytes (default: DATA_DIR/master.key)',
  HTTP_HOST: 'operator REST API address (default 127.0.0.1)',
  HTTP_PORT: 'operator REST API port (default 8080; 0 picks a free port)',
  MQTT_HOST: 'embedded broker address (default 127.0.0.1)',
  MQTT_PORT: 'embedded broker MQTT/TCP port (default 1883)',
  MQTTS_PORT: 'MQTT over TLS port (needs TLS_CERT and TLS_KEY)',
  TLS_CERT: 'PEM certificate file for MQTTS and the device HTTPS plane',
  TLS_KEY: 'PEM private key file',
  TLS_CA: 'PEM CA file: client certificates are required, their CN is the thing name',
  MQTT_WS_PORT: 'MQTT over WebSocket port (path /mqtt)',
  DEVICE_HTTP_PORT: 'device HTTPS data plane port (AWS iot-jobs-data shapes)',
  MQTT_URL: 'use this external broker instead of the embedded one',
  REDIS_URL: 'Redis for a cluster of embedded brokers sharing devices and subscriptions',
  JOBS_TOPIC_ROOT: 'root of the device topics (default $aws/things/{thingName}/jobs)',
  AUTH_MODE: 'required (default) or off (loopback-only development)',
  LOG_LEVEL: 'fatal, error, warn, info (default), debug, trace or silent',
  LOG_FORMAT: 'auto (default: pretty on a terminal, JSON otherwise), json or pretty',
  DEVICE_RATE_LIMIT: 'per-thing device requests per second, rate[/burst]',
  OPERATOR_RATE_LIMIT: 'REST requests per second per operator key, rate[/burst]',
  AWS_REGION: 'region in ARNs (default local)',
  AWS_ACCOUNT_ID: 'account id in ARNs, 12 digits (default 000000000000)',
};

export function serveUsage(): string {
  const flags = CONFIG_VARS.map((v) => [`${flagName(v)} VALUE`, v] as const);
  const width = Math.max(...flags.map(([f]) => f.length));
  return [
    'usage: fleetjobs serve [--flag VALUE]...',
    '',
    'Runs migrations, the MQTT broker, the jobs service, the workers and the operator API. Every flag is also',
    'an environment variable (--http-port 8080 is HTTP_PORT=8080); a flag wins over the environment.',
    '',
    ...flags.map(([f, v]) => `  ${f.padEnd(width)}  ${v}: ${HELP[v]}`),
  ].join('\n');
}
