import { spawnChild, type Child } from './child.js';
import type { ServerKind, StartArgs } from './server-host.js';

export interface HostedServer {
  child: Child;
  host: string;
  port: number;
  /** fleetjobs on PostgreSQL: the application_name of its pool's connections (pgMeter measures their CPU). */
  applicationName?: string;
}

/** Extra node flags for server processes: BENCH_CPU_PROF=dir writes a --cpu-prof profile of each into dir. */
export function serverExecArgv(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

export async function startServer(
  kind: ServerKind,
  extra: Omit<StartArgs, 'kind' | 'host'> = {},
): Promise<HostedServer> {
  const child = await spawnChild(new URL('./server-host.ts', import.meta.url), {
    execArgv: serverExecArgv(),
  });
  try {
    const { host, port, applicationName } = await child.call<{
      host: string;
      port: number;
      applicationName?: string;
    }>('start', {
      kind,
      host: '127.0.0.1',
      ...extra,
    } satisfies StartArgs);
    return { child, host, port, ...(applicationName === undefined ? {} : { applicationName }) };
  } catch (err) {
    await child.exit();
    throw err;
  }
}
