import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A request over IPC; the child answers with { id, ok, value } or { id, ok: false, error }. */
interface Request {
  id: number;
  cmd: string;
  args: unknown;
}
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export interface Child {
  readonly pid: number;
  call<T>(cmd: string, args?: unknown): Promise<T>;
  /** Asks the child to exit (so --cpu-prof profiles are written) and waits; kills it after 15 s. */
  exit(): Promise<void>;
  /** Abrupt death (SIGKILL): its sockets are reset, nothing is closed cleanly. */
  kill(): Promise<void>;
  /** Set once the child has exited, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** Extra node flags, e.g. --cpu-prof. */
  execArgv?: string[];
}

/** Starts a TypeScript module as a child process (node --import tsx) that answers calls with serve(). */
export function spawnChild(moduleUrl: URL, options: SpawnOptions = {}): Promise<Child> {
  const proc: ChildProcess = fork(fileURLToPath(moduleUrl), [], {
    execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  let next = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      for (const p of pending.values()) p.reject(new Error(`child ${proc.pid} exited (${code ?? signal})`));
      pending.clear();
      resolve({ code, signal });
    }),
  );
  proc.on('message', (m: Reply | 'ready') => {
    if (m === 'ready') return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  });
  const child: Child = {
    pid: proc.pid ?? -1,
    exited,
    call<T>(cmd: string, args?: unknown): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args } satisfies Request);
      });
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
    async exit() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.send({ id: 0, cmd: 'exit', args: null } satisfies Request);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    proc.once('message', (m) => (m === 'ready' ? resolve(child) : undefined));
    proc.once('error', reject);
    void exited.then(({ code, signal }) => reject(new Error(`child exited at start (${code ?? signal})`)));
  });
}

export type Handlers = Record<string, (args: never) => unknown>;

/** The child side: runs each call's handler and replies; 'exit' runs onExit and then exits normally. */
export function serve(handlers: Handlers, onExit: () => Promise<void> = async () => {}): void {
  process.on('message', (m: Request) => {
    if (m.cmd === 'exit') {
      void onExit().finally(() => {
        process.disconnect();
        process.exitCode = 0;
        // Whatever the workload left open (sockets mid-close) must not keep the process alive.
        setTimeout(() => process.exit(0), 2_000).unref();
      });
      return;
    }
    const handler = handlers[m.cmd];
    const run = async () => {
      if (!handler) throw new Error(`unknown command ${m.cmd}`);
      return handler(m.args as never);
    };
    run().then(
      (value) => process.send?.({ id: m.id, ok: true, value } satisfies Reply),
      (err: unknown) =>
        process.send?.({
          id: m.id,
          ok: false,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        } satisfies Reply),
    );
  });
  process.send?.('ready');
}
