/**
 * Issue 12 items 2 and 3 through the CLI: a start that fails names the setting in one line and leaves nothing
 * behind (no master key, no admin key); `fleetjobs keys create --admin` on the store recovers access; /readyz
 * follows the external broker. PostgreSQL only: the checks are about DATABASE_URL and a real network.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, TEST_DATABASE_URL, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { runKeysCli } from '../../src/cli/keys.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

/** `fleetjobs serve` in a child process with exactly `env`; resolves when it exits (it is expected to fail). */
function serveFails(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import(${JSON.stringify(MAIN)}).then((m) => m.main(['serve'])).then((c) => { process.exitCode = c; })`,
    ],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'error', ...env }, stdio: 'pipe' },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`serve did not stop:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stderr, stdout });
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

describe('start-up settings and admin access on postgres', { timeout: 45_000 }, () => {
  let t: TestDb;
  let dir: string;
  let dbUrl: string;
  const masterKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    t = await createTestDb('postgres');
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-start-'));
    const u = new URL(TEST_DATABASE_URL);
    u.searchParams.set('search_path', t.schema as string);
    dbUrl = u.toString();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.close();
  });

  const base = () => ({ HTTP_PORT: '0', MQTT_PORT: '0', FLEETJOBS_DATA_DIR: dir });

  it('an unreachable DATABASE_URL stops serve with one line naming it, before anything is created', async () => {
    const port = await closedPort();
    const r = await serveFails({ ...base(), DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test` });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^DATABASE_URL: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}.*; start PostgreSQL or fix`,
        ),
      ),
    ]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a DATABASE_URL naming a database that does not exist says so', async () => {
    const u = new URL(TEST_DATABASE_URL);
    u.pathname = '/fleetjobs_no_such_database';
    const r = await serveFails({ ...base(), DATABASE_URL: u.toString() });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^DATABASE_URL: .*fleetjobs_no_such_database does not exist; create it/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a missing TLS_CERT file and an unreachable MQTT_URL are named with the fix', async () => {
    const cert = await serveFails({
      ...base(),
      DATABASE_URL: dbUrl,
      MQTTS_PORT: '0',
      TLS_CERT: '/nonexistent/cert.pem',
      TLS_KEY: '/nonexistent/key.pem',
    });
    expect(cert.code).toBe(2);
    expect(cert.stderr.trim()).toBe(
      'TLS_CERT=/nonexistent/cert.pem does not exist; set TLS_CERT to a readable PEM file',
    );
    const port = await closedPort();
    const broker = await serveFails({ ...base(), DATABASE_URL: dbUrl, MQTT_URL: `mqtt://127.0.0.1:${port}` });
    expect(broker.code).toBe(2);
    expect(broker.stderr.trim()).toMatch(
      new RegExp(
        `^MQTT_URL: cannot connect to 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); start the broker or fix MQTT_URL`,
      ),
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a start that fails on a busy port leaves no admin key; keys create --admin gives a working one', async () => {
    const squatter = createServer();
    const busy = await listen(squatter);
    try {
      const r = await serveFails({
        ...base(),
        HTTP_PORT: String(busy),
        DATABASE_URL: dbUrl,
        FLEETJOBS_MASTER_KEY: masterKey,
      });
      expect(r.stderr).toContain(`HTTP_PORT ${busy} is in use`);
      expect(r.stdout).not.toContain('FLEETJOBS_TOKEN');
    } finally {
      await new Promise((done) => squatter.close(done));
    }
    expect(await readdir(dir)).not.toContain('admin-key.json');
    const keys = await t.db.query('SELECT access_key_id FROM operator_keys');
    expect(keys).toEqual([]);

    let out = '';
    const io = {
      env: { DATABASE_URL: dbUrl, FLEETJOBS_MASTER_KEY: masterKey },
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (out += s) },
    };
    expect(await runKeysCli(['create', '--admin', '--description', 'recovery'], io)).toBe(0);
    const token = /FLEETJOBS_TOKEN=(\S+)/.exec(out)?.[1] as string;
    expect(token).toMatch(/^FJ[A-Z2-7]{18}\./);

    const app = await startTestServer({ db: t.db, auth: { masterKey: Buffer.from(masterKey, 'base64') } });
    try {
      const ok = await fetch(`${app.addresses.http}/operator-keys`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ok.status).toBe(200);
      const bad = await fetch(`${app.addresses.http}/operator-keys`, {
        headers: { authorization: `Bearer ${token.slice(0, -2)}xx` },
      });
      expect(bad.status).toBe(401);
    } finally {
      await app.close();
    }

    out = '';
    expect(await runKeysCli(['list'], io)).toBe(0);
    const id = token.split('.')[0] as string;
    expect(out).toMatch(new RegExp(`${id}\\s+admin\\s+ACTIVE .*recovery`));
    out = '';
    // The last active admin key stays: revoking it would lock the operator out again.
    expect(await runKeysCli(['revoke', id], io)).toBe(1);
    expect(out).toContain('last active admin key');
  });

  it('/readyz is 503 while the external broker is down and 200 again after', async () => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: 1883 });
    const app = await startTestServer({
      db: t.db,
      config: {
        mqttUrl: `mqtt://127.0.0.1:${proxy.port}?share=none`,
        jobsTopicRoot: `fj-${t.schema as string}/things/{thingName}/jobs`,
      },
    });
    const readyz = async () => {
      const res = await fetch(`${app.addresses.http}/readyz`);
      return { status: res.status, body: (await res.json()) as { message?: string } };
    };
    const waitFor = async (status: number) => {
      const until = Date.now() + 10_000;
      for (;;) {
        const r = await readyz();
        if (r.status === status) return r;
        if (Date.now() > until) throw new Error(`/readyz stayed ${r.status}`);
        await new Promise((d) => setTimeout(d, 50));
      }
    };
    try {
      expect((await readyz()).status).toBe(200);
      proxy.setMode('refuse');
      proxy.resetAll();
      expect((await waitFor(503)).body.message).toBe('the MQTT broker at MQTT_URL is not reachable');
      proxy.setMode('pass');
      await waitFor(200);
    } finally {
      await app.close();
      await proxy.close();
    }
  });
});
