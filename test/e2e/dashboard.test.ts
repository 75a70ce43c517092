import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { MqttClient } from 'mqtt';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { insertThings } from '../../src/store/things.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest, waitForMessage } from '../helpers/mqtt.js';
import { ensureDashboardBuilt } from '../helpers/dashboard.js';
import { dashboardRoutes } from '../../src/http/routes/dashboard.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(process.cwd(), 'test-results', 'dashboard');
const haveChromium = existsSync(CHROMIUM);
// .ci/run installs Chromium and sets this: in CI the browser test runs or fails, never skips.
if (!haveChromium && process.env.FLEETJOBS_REQUIRE_BROWSER === '1') {
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
}
if (!haveChromium) console.log(`dashboard browser tests skipped: ${CHROMIUM} is not installed`);
const browser = it.skipIf(!haveChromium);

/** A TCP proxy in front of the server, so a test can drop the browser's connections and refuse new ones. */
async function tcpProxy(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    /** Drops every open connection and refuses new ones until restore(). */
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  await ensureDashboardBuilt();
  await mkdir(SHOTS, { recursive: true });
}, 120_000);

describe.each(BACKENDS)('the dashboard on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey | undefined;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let proxy: Awaited<ReturnType<typeof tcpProxy>>;
  const devices: MqttClient[] = [];
  const requests: { url: string; authorization: string | undefined; lastEventId: string | undefined }[] = [];
  const shot = (name: string) =>
    page.screenshot({ path: join(SHOTS, `${backend}-${name}.png`), fullPage: true });

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${admin?.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const device = async (thingName: string) => {
    const { secret } = (await api('POST', `/things/${thingName}/credentials`)) as { secret: string };
    const client = await connectDevice(app.addresses.mqtt, {
      clientId: thingName,
      username: thingName,
      password: secret,
    });
    devices.push(client);
    return client;
  };
  const report = (client: MqttClient, thingName: string, topic: string, body: object) =>
    deviceRequest(client, `$aws/things/${thingName}/jobs/${topic}`, { clientToken: topic, ...body });

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(t.db, ['dev-1', 'dev-2', 'idle-1', 'sched-1', 'dl-1'], new Date());
    app = await startTestServer({ db: t.db, auth: { onAdminKeyCreated: (k) => (admin = k) } });
    await api('PUT', '/job-templates/firmware', {
      description: 'Install a firmware version',
      document: JSON.stringify({ operation: 'install', version: '${aws:iot:parameter:version}' }),
      documentParameters: [{ key: 'version', description: 'semver to install', example: '1.2.3' }],
    });
    if (!haveChromium) return;
    proxy = await tcpProxy(app.addresses.http);
    profile = await mkdtemp(join(tmpdir(), 'fleetjobs-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1366, height: 800 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(10_000);
    page.on('request', (r) =>
      requests.push({
        url: r.url(),
        authorization: r.headers().authorization,
        lastEventId: r.headers()['last-event-id'],
      }),
    );
  }, 120_000);
  afterAll(async () => {
    for (const d of devices) await d.endAsync(true);
    await context?.close();
    await proxy?.close();
    await app?.close();
    await t?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('serves the built page and its assets without a key, under a CSP that allows this server only', async () => {
    const page = await fetch(`${app.addresses.http}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toMatch(/^<!doctype html>/);
    // No inline script: everything the page runs is a file of the build.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const res = await fetch(`${app.addresses.http}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-type')).toMatch(
        asset.endsWith('.js') ? /^text\/javascript/ : asset.endsWith('.css') ? /^text\/css/ : /^image\//,
      );
      // Read to the end: an unread body can keep its keep-alive socket open after the server closes, and the
      // leak check then fails the file.
      expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
    }
    // The API it calls still needs the key.
    expect((await fetch(`${app.addresses.http}/jobs`)).status).toBe(401);
    expect((await fetch(`${app.addresses.http}/events`)).status).toBe(401);
  });

  it('answers 404 for a file the build does not have, however the name is encoded', async () => {
    for (const path of ['/assets/nope.js', '/assets/..%2Fpackage.json', '/assets/%2e%2e%2findex.html']) {
      const res = await fetch(`${app.addresses.http}${path}`);
      expect(res.status, path).toBe(404);
    }
    expect((await fetch(`${app.addresses.http}/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
  });

  it('says how to build the dashboard when dist/dashboard is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fleetjobs-no-dashboard-'));
    const bare = Fastify();
    try {
      await bare.register(dashboardRoutes({ dir: empty }));
      const res = await bare.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain('npm run build');
      expect((await bare.inject({ method: 'GET', url: '/assets/index.js' })).statusCode).toBe(404);
    } finally {
      await bare.close();
      await rm(empty, { recursive: true, force: true });
    }
  });

  browser('refuses a wrong key, then signs in with an operator key kept in session storage', async () => {
    await page.goto(`${proxy.url}/`);
    await page.locator('input[name=operatorKey]').fill('FJAAAAAAAAAAAAAAAAAA.wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'refused this key' }).waitFor();
    await shot('01-login');

    await page.locator('input[name=operatorKey]').fill(admin?.token ?? '');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('No jobs yet').waitFor();
    await page.locator('[data-stream=live]').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('fleetjobs.operatorKey')")).toBe(admin?.token);
    await shot('02-no-jobs');
  });

  browser(
    'creates a job from a document and shows devices completing it live, without a reload',
    async () => {
      await page.evaluate("window.marker = 'same page'");
      await page.getByRole('link', { name: 'New job' }).first().click();
      await page.locator('input[name=jobId]').fill('fw-1');
      await page.locator('textarea[name=targets]').fill('dev-1\nthing/dev-2');
      await page.locator('input[name=description]').fill('Reboot the lobby sensors');
      await page.locator('textarea[name=document]').fill('{"operation": "reboot"}');
      await shot('03-create-job');
      await page.getByRole('button', { name: 'Create job' }).click();
      await page.waitForURL(/#\/jobs\/fw-1$/);
      await page.locator('.tile[data-status=QUEUED] .tile-n', { hasText: '2' }).waitFor();

      await page.getByRole('link', { name: '← Jobs' }).click();
      const row = page.locator('tr[data-job-id=fw-1]');
      await row.locator('.done', { hasText: '0/2' }).waitFor();

      // A job created elsewhere appears on its own.
      await api('PUT', '/jobs/other-1', { targets: ['thing/idle-1'], document: '{}' });
      await page.locator('tr[data-job-id=other-1]').waitFor();

      const d1 = await device('dev-1');
      const d2 = await device('dev-2');
      await report(d1, 'dev-1', 'start-next', { statusDetails: { step: 'download' } });
      await row.locator('.bar[aria-label*="IN_PROGRESS: 1"]').waitFor();
      await shot('04-in-progress');
      await report(d1, 'dev-1', 'fw-1/update', {
        status: 'SUCCEEDED',
        statusDetails: { result: 'rebooted' },
      });
      await report(d2, 'dev-2', 'start-next', {});
      await report(d2, 'dev-2', 'fw-1/update', { status: 'FAILED', statusDetails: { reason: 'disk full' } });
      await row.locator('.done', { hasText: '2/2' }).waitFor();
      await row.locator('.badge', { hasText: 'COMPLETED' }).waitFor();
      expect(await row.locator('.bar').getAttribute('aria-label')).toBe('SUCCEEDED: 1, FAILED: 1');
      expect(await page.evaluate('window.marker')).toBe('same page');
      await shot('05-jobs-live');
    },
  );

  browser('resumes the event stream with Last-Event-ID after the connection dropped', async () => {
    const before = requests.filter((r) => new URL(r.url).pathname === '/events').length;
    proxy.cut();
    await page.locator('[data-stream=reconnecting]').waitFor();
    await page.getByRole('alert').filter({ hasText: 'Reconnecting' }).waitFor();
    await shot('06-reconnecting');
    await api('PUT', '/jobs/other-1/cancel', {});
    proxy.restore();
    await page.locator('[data-stream=live]').waitFor();
    await page.locator('tr[data-job-id=other-1] .badge', { hasText: 'CANCELED' }).waitFor();
    const again = requests.filter((r) => new URL(r.url).pathname === '/events').slice(before);
    expect(again.length).toBeGreaterThan(0);
    // Every reconnect names the last event the page had seen (fw-1's completion, at least).
    expect(again.every((r) => r.lastEventId !== undefined && /^\d+$/.test(r.lastEventId))).toBe(true);
  });

  browser(
    'opens a job, filters its executions by status and shows a device statusDetails and history',
    async () => {
      await page.getByRole('link', { name: 'fw-1' }).click();
      await page.locator('tr[data-thing=dev-1]').waitFor();
      await page.locator('tr[data-thing=dev-2]').waitFor();
      await page.locator('.tile[data-status=FAILED]').click();
      await page.locator('tr[data-thing=dev-1]').waitFor({ state: 'detached' });
      await page.locator('tr[data-thing=dev-2]').waitFor();
      expect(await page.locator('table.executions tbody tr').count()).toBe(1);
      expect(await page.locator('select[name=status]').inputValue()).toBe('FAILED');

      await page.locator('tr[data-thing=dev-2]').click();
      const detail = page.locator('.execution-detail');
      await detail.locator('table.kv', { hasText: 'disk full' }).waitFor();
      expect(await detail.locator('table.history tbody tr').count()).toBe(1);
      await shot('07-job-detail-failed');

      await page.locator('select[name=status]').selectOption('SUCCEEDED');
      await page.locator('tr[data-thing=dev-1]').waitFor();
      await page.locator('tr[data-thing=dev-2]').waitFor({ state: 'detached' });
    },
  );

  browser('shows a thing with its executions across jobs', async () => {
    await page.locator('select[name=status]').selectOption('');
    await page.locator('tr[data-thing=dev-2] a').click();
    await page.waitForURL(/#\/things\/dev-2$/);
    await page.locator('tr[data-job-id=fw-1] .badge', { hasText: 'FAILED' }).waitFor();
    await shot('08-thing');
  });

  browser('creates a job from a template with parameters and cancels it after confirmation', async () => {
    await page.goto(`${proxy.url}/#/jobs/new`);
    await page.locator('input[name=jobId]').fill('upd-1');
    await page.locator('textarea[name=targets]').fill('ghost-9');
    await page.getByText('From a template').click();
    await page.locator('select[name=template]').selectOption('firmware');
    await page.locator('input[name=param-version]').fill('2.4.0');
    await page.getByRole('button', { name: 'Create job' }).click();
    // The server's answer is shown as it is: here the target that does not exist.
    await page.getByRole('alert').filter({ hasText: 'ghost-9' }).waitFor();
    await shot('09-create-error');
    await page.locator('textarea[name=targets]').fill('idle-1');
    await shot('10-create-from-template');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/upd-1$/);
    await page.locator('.tile[data-status=QUEUED] .tile-n', { hasText: '1' }).waitFor();
    await page.getByText('Job document').click();
    await page.locator('details.document pre', { hasText: '"version": "2.4.0"' }).waitFor();

    await page.getByRole('button', { name: 'Cancel job…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Keep the job' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(((await api('GET', '/jobs/upd-1')) as { job: { status: string } }).job.status).toBe('IN_PROGRESS');

    await page.getByRole('button', { name: 'Cancel job…' }).click();
    await dialog.getByText('Force cancel', { exact: true }).click();
    await dialog.locator('input[name=comment]').fill('wrong version');
    await shot('11-cancel-confirm');
    await dialog.getByRole('button', { name: 'Force cancel job' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.job-title + .badge', { hasText: 'CANCELED' }).waitFor();
    await page.locator('.tile[data-status=CANCELED] .tile-n', { hasText: '1' }).waitFor();
    const { job } = (await api('GET', '/jobs/upd-1')) as { job: Record<string, unknown> };
    expect(job).toMatchObject({ status: 'CANCELED', forceCanceled: true, comment: 'wrong version' });
    await shot('12-canceled');
  });

  browser('lists a schedule with its next run and runs linking to their jobs, and pauses it', async () => {
    const schedule = await api('PUT', '/job-schedules/nightly', {
      description: 'Nightly firmware check',
      scheduleExpression: 'cron(0 3 * * ? *)',
      scheduleExpressionTimezone: 'Europe/Berlin',
      jobTemplateArn: 'firmware',
      documentParameters: { version: '1.0.0' },
      targets: ['thing/sched-1'],
    });
    // One tick, run by hand at the schedule's next run: it creates the job `nightly-{tick in UTC}`.
    const tickAt = new Date((schedule.nextRunAt as number) * 1000);
    await app.workers.schedules.runOnce(tickAt);
    const { runs } = (await api('GET', '/job-schedules/nightly/runs')) as { runs: { jobId: string }[] };
    const jobId = runs[0]?.jobId as string;
    expect(jobId).toMatch(/^nightly-\d{8}T\d{4}Z$/);

    await page.getByRole('link', { name: 'Schedules' }).click();
    const row = page.locator('tr[data-schedule-id=nightly]');
    await row.locator('.badge', { hasText: 'ENABLED' }).waitFor();
    expect(await row.textContent()).toContain('Europe/Berlin');
    await row.locator('td.runs .badge', { hasText: 'CREATED' }).waitFor();
    await row.getByRole('link', { name: 'nightly' }).click();
    await page.waitForURL(/#\/schedules\/nightly$/);
    await page
      .locator(`.schedule-runs tr[data-job-id="${jobId}"] .badge`, { hasText: 'IN PROGRESS' })
      .waitFor();
    await shot('14-schedules');

    await row.getByRole('button', { name: 'Pause' }).click();
    await row.locator('.badge', { hasText: 'PAUSED' }).waitFor();
    await row.getByRole('button', { name: 'Resume' }).waitFor();
    const paused = await api('GET', '/job-schedules/nightly');
    expect(paused).toMatchObject({ state: 'PAUSED' });
    expect(paused.nextRunAt).toBeUndefined();
    await shot('15-schedule-paused');

    await page.locator('.schedule-runs').getByRole('link', { name: jobId }).click();
    await page.waitForURL(new RegExp(`#/jobs/${jobId}$`));
    await page.locator('tr[data-thing=sched-1]').waitFor();
  });

  browser('lists a dead letter with its statusDetails and retries it after confirmation', async () => {
    await api('PUT', '/jobs/dl-job', { targets: ['thing/dl-1'], document: '{"operation": "flash"}' });
    const d = await device('dl-1');
    await d.subscribeAsync('$aws/things/dl-1/jobs/notify-next');
    await report(d, 'dl-1', 'start-next', {});
    await report(d, 'dl-1', 'dl-job/update', {
      status: 'FAILED',
      statusDetails: { reason: 'flash write error' },
    });

    await page.getByRole('link', { name: 'Dead letters' }).click();
    const row = page.locator('tr[data-job-id=dl-job][data-thing=dl-1]');
    await row.locator('td.attempts', { hasText: 'reason=flash write error' }).waitFor();
    await row.locator('.badge', { hasText: 'FAILED' }).first().waitFor();
    // fw-1 failed on dev-2 without a retry configuration: a dead letter too.
    await page.locator('tr[data-job-id=fw-1][data-thing=dev-2]').waitFor();
    await shot('16-dead-letters');

    await row.getByRole('button', { name: 'Retry now…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Keep it failed' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await row.count()).toBe(1);

    await row.getByRole('button', { name: 'Retry now…' }).click();
    await shot('17-retry-confirm');
    const notified = waitForMessage(
      d,
      '$aws/things/dl-1/jobs/notify-next',
      (m) => m.json?.execution?.jobId === 'dl-job',
    );
    await dialog.getByRole('button', { name: 'Retry now' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Queued execution #2 of dl-job on dl-1' }).waitFor();
    expect((await notified).json.execution).toMatchObject({
      jobId: 'dl-job',
      status: 'QUEUED',
      executionNumber: 2,
    });
    const { execution } = (await api('GET', '/things/dl-1/jobs/dl-job')) as {
      execution: Record<string, unknown>;
    };
    expect(execution).toMatchObject({ status: 'QUEUED', executionNumber: 2, retryAttempt: 1 });
    await shot('18-retried');
  });

  browser('sent the key only as a Bearer header, never in a URL', async () => {
    const secret = (admin?.token ?? '').split('.')[1] as string;
    expect(secret.length).toBeGreaterThan(8);
    expect(requests.filter((r) => r.url.includes(secret))).toEqual([]);
    const events = requests.filter((r) => new URL(r.url).pathname === '/events');
    expect(events.length).toBeGreaterThan(0);
    for (const r of events) expect(r.authorization).toBe(`Bearer ${admin?.token}`);
  });

  browser('signs out to the login when its key is revoked', async () => {
    const viewer = (await api('POST', '/operator-keys', { role: 'viewer' })) as {
      accessKeyId: string;
      token: string;
    };
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name=operatorKey]').fill(viewer.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-stream=live]').waitFor();
    await page.goto(`${proxy.url}/#/jobs`);
    await page.locator('tr[data-job-id=fw-1]').waitFor();
    // Once every row has its counters the page makes no call but the stream's.
    await expect.poll(() => page.locator('td.done', { hasText: '…' }).count()).toBe(0);
    await api('DELETE', `/operator-keys/${viewer.accessKeyId}`);
    // The open stream was admitted before the revocation; its next connection is refused.
    proxy.cut();
    proxy.restore();
    await page.getByRole('alert').filter({ hasText: 'no longer accepts this key' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('fleetjobs.operatorKey')")).toBeNull();
    await shot('13-signed-out');
  });
});
