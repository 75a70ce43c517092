/**
 * The embedded PGlite belongs to one process: a second `serve`, `migrate` or `keys` on a data directory a running
 * serve holds stops with one line instead of opening it (two single-user PostgreSQL processes on one directory
 * corrupt it); after the holder is killed with SIGKILL its stale lock is taken over.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeysCli } from '../../src/cli/keys.js';
import { createPgliteDb } from '../../src/store/db.js';
import { DataDirInUseError } from '../../src/store/data-dir-lock.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

function fleetjobs(args: string[], env: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import(${JSON.stringify(MAIN)}).then((m) => m.main(${JSON.stringify(args)})).then((c) => { process.exitCode = c; })`,
    ],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' },
  );
}

function output(child: ChildProcessWithoutNullStreams): { text: () => string } {
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return { text: () => text };
}

function exited(child: ChildProcessWithoutNullStreams, ms = 30_000): Promise<number | null> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the process did not exit')), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done(code);
    });
  });
}

describe('the embedded PGlite data directory', () => {
  let dir: string;
  let env: Record<string, string>;
  let serve: ChildProcessWithoutNullStreams | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fj-lock-'));
    env = { FLEETJOBS_DATA_DIR: dir, HTTP_PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'info' };
  });

  afterAll(async () => {
    serve?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  function keysIo() {
    const io = {
      env,
      out: { text: '', write: (s: string) => void (io.out.text += s) },
      err: { text: '', write: (s: string) => void (io.err.text += s) },
    };
    return io;
  }

  it('is held by a running serve: a second serve stops with one line naming it, keys list is refused', async () => {
    serve = fleetjobs(['serve'], env);
    const log = output(serve);
    for (let i = 0; i < 300 && !log.text().includes('fleetjobs started'); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(log.text()).toContain('fleetjobs started');
    expect(await readFile(join(dir, 'pglite.lock'), 'utf8')).toBe(`${serve.pid}\n`);

    const second = fleetjobs(['serve'], env);
    const secondLog = output(second);
    expect(await exited(second)).toBe(1);
    expect(secondLog.text()).toContain(`is in use by process ${serve.pid}`);
    expect(secondLog.text()).toContain('DATABASE_URL');

    // main prints it as the one line the second serve printed above.
    const refused = runKeysCli(['list'], keysIo());
    await expect(refused).rejects.toBeInstanceOf(DataDirInUseError);
    await expect(refused).rejects.toThrow(`is in use by process ${serve.pid}`);
  });

  it('is taken over once its holder was killed with SIGKILL, and released at close', async () => {
    const holder = serve as ChildProcessWithoutNullStreams;
    holder.kill('SIGKILL');
    await exited(holder);
    serve = undefined;
    // The killed serve left its lock behind.
    expect(await readFile(join(dir, 'pglite.lock'), 'utf8')).toBe(`${holder.pid}\n`);

    const io = keysIo();
    expect(await runKeysCli(['list'], io)).toBe(0);
    expect(io.out.text).toMatch(/admin\s+ACTIVE/);
    await expect(readFile(join(dir, 'pglite.lock'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('is refused to a second open in the same process', async () => {
    const db = await createPgliteDb({ dataDir: join(dir, 'pglite') });
    try {
      await expect(createPgliteDb({ dataDir: join(dir, 'pglite') })).rejects.toThrow(DataDirInUseError);
    } finally {
      await db.close();
    }
    const again = await createPgliteDb({ dataDir: join(dir, 'pglite') });
    await again.close();
  });
});
