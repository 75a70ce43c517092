/**
 * `npm run bench:startup`: how long `fleetjobs serve` on the embedded default (PGlite in a temp
 * FLEETJOBS_DATA_DIR) takes from process spawn to the first `/readyz` 200, on an empty data dir (cold) and
 * after a kill -9 (PGlite recovers its WAL). Each round is cold start, kill -9, restart, kill -9, in a fresh dir.
 *
 *   npm run bench:startup -- --rounds 5
 *   npm run bench:startup -- --root /work/main --root .   # alternate two checkouts, round by round
 *   npm run bench:startup -- --cpu-prof /tmp/prof          # a --cpu-prof profile of every server process
 *   npm run bench:startup -- --bin                         # the built bin/fleetjobs.js (npx tsc -p tsconfig.build.json)
 *
 * With --cpu-prof the servers are stopped with SIGTERM (a profile is written only on exit), so the second start
 * of a round follows a clean stop. The phase lines are the times of the server's own log lines (JSON, epoch ms)
 * after spawn; "CPU until ready" is user + system time of the server process (all threads) from /proc.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    root: { type: 'string', multiple: true },
    'cpu-prof': { type: 'string' },
    bin: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const roots = (values.root ?? [resolve(import.meta.dirname, '..')]).map((r) => resolve(r));
const READY_TIMEOUT_MS = 60_000;

/** Log messages whose time after spawn is reported, in the order they are written. */
const PHASES: [prefix: string, name: string][] = [
  ['using embedded PGlite', 'first log (imports done)'],
  ['Server listening at', 'HTTP listening'],
];

/** Clock ticks per second of /proc/<pid>/stat (Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, every thread) the process has used, in ms; undefined where /proc is missing. */
async function cpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

interface Sample {
  readyMs: number;
  /** CPU the server used until it was ready: less sensitive than wall time to other load on the machine. */
  cpuMs: number | undefined;
  phases: Record<string, number>;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => done(port));
    });
  });
}

async function readyz(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Spawns `serve` from `root`, waits for /readyz 200, then kills it with SIGKILL. */
async function startOnce(root: string, dataDir: string): Promise<Sample> {
  const port = await freePort();
  const main = join(root, 'src/cli/main.ts');
  const execArgv = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  // From source as in development (tsx), or the compiled JavaScript an installed package runs.
  const args = values.bin
    ? [...execArgv, join(root, 'bin/fleetjobs.js'), 'serve']
    : [
        '--import',
        'tsx',
        ...execArgv,
        '-e',
        `import(${JSON.stringify(main)}).then((m) => m.main(['serve'])).then((c) => { process.exitCode = c; })`,
      ];
  const t0 = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      FLEETJOBS_DATA_DIR: dataDir,
      HTTP_PORT: String(port),
      MQTT_PORT: '0',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const phases: Record<string, number> = {};
  let output = '';
  let exited = false;
  child.once('exit', () => (exited = true));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let started = () => {};
  const startedLogged = new Promise<void>((r) => (started = r));
  let pending = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { msg?: string; time?: number };
      const name = PHASES.find(([prefix]) => entry.msg?.startsWith(prefix))?.[1];
      if (name !== undefined && entry.time !== undefined) phases[name] = entry.time - t0;
      if (entry.msg === 'fleetjobs started') started();
    }
  });
  try {
    for (;;) {
      if (exited) throw new Error(`serve exited before it was ready:\n${output}`);
      if (Date.now() - t0 > READY_TIMEOUT_MS) throw new Error(`serve not ready within 60 s:\n${output}`);
      if (await readyz(port)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const readyMs = Date.now() - t0;
    return { readyMs, cpuMs: await cpuMs(child.pid as number), phases };
  } finally {
    if (values['cpu-prof'] && !exited) {
      // A profile is written only on a normal exit: SIGTERM once serve handles it (after its start log), so
      // the next start is after a clean stop.
      await startedLogged;
      child.kill('SIGTERM');
    } else {
      child.kill('SIGKILL');
    }
    if (!exited) await new Promise((r) => child.once('exit', r));
  }
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `min ${s[0]} ms  median ${median} ms  max ${s.at(-1)} ms  (n=${s.length})`;
}

const samples = new Map(roots.map((r) => [r, { cold: [] as Sample[], restart: [] as Sample[] }]));
for (let round = 0; round < rounds; round++) {
  for (const root of round % 2 ? [...roots].reverse() : roots) {
    const dataDir = await mkdtemp(join(tmpdir(), 'fj-startup-'));
    try {
      const cold = await startOnce(root, dataDir);
      const restart = await startOnce(root, dataDir);
      const own = samples.get(root)!;
      own.cold.push(cold);
      own.restart.push(restart);
      console.log(
        `round ${round + 1} ${root}: cold ${cold.readyMs} ms (CPU ${cold.cpuMs ?? '?'} ms), restart ${restart.readyMs} ms (CPU ${restart.cpuMs ?? '?'} ms)`,
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
}
for (const [root, { cold, restart }] of samples) {
  console.log(`\n${root}`);
  for (const [label, xs] of [
    ['cold first start', cold],
    [values['cpu-prof'] ? 'restart after SIGTERM' : 'restart after kill -9', restart],
  ] as const) {
    console.log(`  ${label.padEnd(22)} spawn -> /readyz 200: ${stats(xs.map((x) => x.readyMs))}`);
    const cpu = xs.map((x) => x.cpuMs).filter((v): v is number => v !== undefined);
    if (cpu.length > 0) console.log(`  ${''.padEnd(22)} ${'CPU until ready'.padEnd(20)} ${stats(cpu)}`);
    for (const [, phase] of PHASES) {
      const ms = xs.map((x) => x.phases[phase]).filter((v): v is number => v !== undefined);
      if (ms.length > 0) console.log(`  ${''.padEnd(22)} ${phase.padEnd(20)} ${stats(ms)}`);
    }
  }
}
