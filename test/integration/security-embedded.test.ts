import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');
// The child runs in an empty directory, so tsx is named by path rather than resolved from there.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

interface Served {
  child: ChildProcess;
  stdout: () => string;
  http: string;
  mqtt: string;
}

/** `fleetjobs serve` with no flags in an empty directory: the embedded default (PGlite, broker, API). */
function serve(cwd: string): Promise<Served> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      '-e',
      `import(${JSON.stringify(MAIN)}).then((m) => m.main(['serve'])).then((c) => { process.exitCode = c; })`,
    ],
    // Only the ports move off their defaults (1883 is Mosquitto's here); nothing names auth or a database.
    {
      cwd,
      env: { PATH: process.env.PATH, HTTP_PORT: '0', MQTT_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}\n${err}`)), 150_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"fleetjobs started"'));
      if (line === undefined) return;
      clearTimeout(timer);
      const { addresses } = JSON.parse(line) as { addresses: { http: string; mqtt: string } };
      resolvePromise({ child, stdout: () => out, http: addresses.http, mqtt: addresses.mqtt });
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}\n${err}`)));
  });
}

function stop(s: Served | undefined): Promise<void> {
  if (s === undefined || s.child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    s.child.once('exit', () => done());
    s.child.kill('SIGTERM');
  });
}

function connack(url: string, options: mqtt.IClientOptions): Promise<number> {
  return new Promise((done) => {
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
    c.once('connect', () => c.end(true, () => done(0)));
    c.once('error', (e: Error & { code?: number }) => c.end(true, () => done(e.code ?? -1)));
  });
}

describe('the embedded default started with no flags', () => {
  let dir: string;
  let first: Served | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-embedded-'));
    first = await serve(dir);
  }, 180_000);
  afterAll(async () => {
    await stop(first);
    await rm(dir, { recursive: true, force: true });
  });

  it('is not reachable without a key and prints how to get one', async () => {
    const s = first as Served;
    const res = await fetch(`${s.http}/jobs`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toMatch(/Authorization: Bearer/);
    expect(await connack(s.mqtt, {})).toBe(5);
    expect(await connack(s.mqtt, { username: 'thing', password: 'guess' })).toBe(5);

    const token = /export FLEETJOBS_TOKEN=(\S+)/.exec(s.stdout())?.[1];
    expect(token).toMatch(/^FJ[A-Z2-7]{18}\./);
    const file = join(dir, 'data', 'admin-key.json');
    expect(s.stdout()).toContain(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ token, role: 'admin' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'data', 'master.key'))).mode & 0o777).toBe(0o600);
    const ok = await fetch(`${s.http}/operator-keys`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
  });
});
