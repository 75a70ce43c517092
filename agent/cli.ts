import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createAgent } from './agent.js';
import type { AgentCredentials } from './types.js';

export const AGENT_USAGE = `usage: fleetjobs agent --url mqtt://host:1883 --thing NAME [--token T | --cert FILE --key FILE [--ca FILE]]
                       [--handler-dir DIR] [--topic-root ROOT] [--step-timeout SECONDS] [--stop-timeout SECONDS]

Runs jobs for one thing. The token may also come from FLEETJOBS_AGENT_TOKEN (kept off the command line).
On SIGTERM or SIGINT the current job gets --stop-timeout seconds (default 10) to finish, then it is stopped and
reported FAILED, and the agent exits.`;

class UsageError extends Error {}

function seconds(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} must be a number of seconds`);
  return n;
}

/** `fleetjobs agent`: flags to options, pino logs, and a clean stop on SIGTERM/SIGINT. Returns the exit code. */
export async function runAgentCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        thing: { type: 'string' },
        token: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        'handler-dir': { type: 'string' },
        'topic-root': { type: 'string' },
        'step-timeout': { type: 'string' },
        'stop-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      console.log(AGENT_USAGE);
      return 0;
    }
    if (values.url === undefined) throw new UsageError('--url is required (mqtt://host:port or mqtts://...)');
    if (values.thing === undefined) throw new UsageError('--thing is required');
    if ((values.cert === undefined) !== (values.key === undefined)) {
      throw new UsageError('--cert and --key go together');
    }
    const token = values.token ?? env.FLEETJOBS_AGENT_TOKEN;
    const read = (file: string, flag: string) => {
      try {
        return readFileSync(file);
      } catch {
        throw new UsageError(`--${flag} ${file} cannot be read`);
      }
    };
    const credentials: AgentCredentials = {
      ...(token === undefined ? {} : { token }),
      ...(values.cert === undefined ? {} : { cert: read(values.cert, 'cert') }),
      ...(values.key === undefined ? {} : { key: read(values.key, 'key') }),
      ...(values.ca === undefined ? {} : { ca: read(values.ca, 'ca') }),
    };
    options = {
      url: values.url,
      thingName: values.thing,
      credentials,
      handlerDir: values['handler-dir'],
      topicRoot: values['topic-root'],
      stepTimeoutSeconds: seconds(values['step-timeout'], 'step-timeout', 3600),
      stopTimeoutMs: seconds(values['stop-timeout'], 'stop-timeout', 10) * 1000,
      logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
    };
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${AGENT_USAGE}`);
    return 2;
  }

  const log = pino({ level: options.logLevel });
  let agent;
  try {
    agent = createAgent({
      url: options.url,
      thingName: options.thingName,
      credentials: options.credentials,
      ...(options.handlerDir === undefined ? {} : { handlerDir: options.handlerDir }),
      ...(options.topicRoot === undefined ? {} : { topicRoot: options.topicRoot }),
      stepTimeoutSeconds: options.stepTimeoutSeconds,
      logger: log,
    });
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  agent.on('step', (e) => log.info(e, 'step started'));
  agent.on('job:canceled', (e) => log.info(e, 'job canceled by the service'));
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    void agent.start();
  });
  log.info({ signal }, 'stopping');
  await agent.stop({ timeoutMs: options.stopTimeoutMs });
  log.info('stopped');
  return 0;
}
