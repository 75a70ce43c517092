import { describe, expect, it } from 'vitest';
import { ConfigError, flagName, loadConfig, parseFlags } from '../../src/config.js';

describe('configuration', () => {
  it('has the SPEC §2 defaults', () => {
    expect(loadConfig({})).toMatchObject({
      databaseUrl: undefined,
      dataDir: './data',
      httpHost: '127.0.0.1',
      httpPort: 8080,
      mqttHost: '127.0.0.1',
      mqttPort: 1883,
      jobsTopicRoot: '$aws/things/{thingName}/jobs',
      authMode: 'required',
      logLevel: 'info',
      awsRegion: 'local',
      awsAccountId: '000000000000',
    });
  });

  it('takes a flag over the environment over the default', () => {
    const flags = parseFlags(['--http-port', '9000', '--log-level=debug']);
    const config = loadConfig({ HTTP_PORT: '7000', LOG_LEVEL: 'warn', MQTT_PORT: '1999' }, flags);
    expect(config.httpPort).toBe(9000);
    expect(config.logLevel).toBe('debug');
    expect(config.mqttPort).toBe(1999);
  });

  it('names every variable as a flag', () => {
    expect(flagName('DATABASE_URL')).toBe('--database-url');
    expect(flagName('MQTT_WS_PORT')).toBe('--mqtt-ws-port');
  });

  it.each([
    [{ HTTP_PORT: 'eighty' }, /^HTTP_PORT=eighty is not a port; set HTTP_PORT/],
    [{ MQTT_PORT: '70000' }, /^MQTT_PORT=70000 is not a port/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL must start with postgres/],
    [{ JOBS_TOPIC_ROOT: 'no/placeholder' }, /^JOBS_TOPIC_ROOT must contain \{thingName\}/],
    [{ AUTH_MODE: 'maybe' }, /^AUTH_MODE=maybe is not valid/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL=loud is not valid/],
    [{ MQTTS_PORT: '8883' }, /^MQTTS_PORT needs TLS_CERT and TLS_KEY/],
    [
      { AUTH_MODE: 'off', HTTP_HOST: '0.0.0.0' },
      /^AUTH_MODE=off is refused while a listener binds to 0\.0\.0\.0/,
    ],
    [{ MQTT_URL: 'broker:1883' }, /^MQTT_URL must look like mqtt:\/\//],
  ])('stops on %j with one line naming the variable and the fix', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('allows AUTH_MODE=off on loopback listeners', () => {
    expect(loadConfig({ AUTH_MODE: 'off', HTTP_HOST: 'localhost', MQTT_HOST: '127.0.0.2' }).authMode).toBe(
      'off',
    );
  });

  it('accepts port 0 everywhere', () => {
    expect(loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0' })).toMatchObject({ httpPort: 0, mqttPort: 0 });
  });

  it('refuses unknown flags and flags without a value', () => {
    expect(() => parseFlags(['--bogus', '1'])).toThrow(/unknown option --bogus/);
    expect(() => parseFlags(['--http-port'])).toThrow(/--http-port needs a value/);
  });
});
