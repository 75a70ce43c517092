import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { pino } from 'pino';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { createCliLogger } from '../../src/cli/logger.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';

type Line = Record<string, unknown> & { level: number; msg: string };

/** A pino destination that keeps every line and resolves waiters when a matching one arrives. */
function captureLog() {
  const lines: Line[] = [];
  const waiters: { match: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  const stream = {
    write(text: string) {
      const line = JSON.parse(text) as Line;
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    },
  };
  const find = (match: (l: Line) => boolean) => lines.find(match);
  const waitFor = (what: string, match: (l: Line) => boolean, timeoutMs = 5000): Promise<Line> => {
    const seen = find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line: ${what}`)), timeoutMs);
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  };
  return { logger: pino({ level: 'info' }, stream), lines, find, waitFor };
}

describe.each(BACKENDS)('server log lines on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey | undefined;
  const log = captureLog();
  const api = (method: string, path: string, body?: unknown, token = admin?.token) =>
    fetch(`${app.addresses.http}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: body === undefined ? null : JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({
      db: t.db,
      logger: log.logger,
      auth: { onAdminKeyCreated: (k) => (admin = k) },
    });
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  it('logs one line per request with its id, which the response and an error body carry too', async () => {
    const ok = await api('GET', '/jobs');
    expect(ok.status).toBe(200);
    const okId = ok.headers.get('x-amzn-requestid');
    const line = await log.waitFor('GET /jobs', (l) => l.msg === 'request' && l.requestId === okId);
    expect(line).toMatchObject({ level: 30, method: 'GET', route: '/jobs', statusCode: 200 });
    expect(line.responseTimeMs).toEqual(expect.any(Number));

    const missing = await api('GET', '/jobs/no-such-job');
    const body = (await missing.json()) as { requestId: string };
    expect(body.requestId).toBe(missing.headers.get('x-amzn-requestid'));
    await log.waitFor('the 404', (l) => l.requestId === body.requestId && l.statusCode === 404);
  });

  it('warns on an operator authentication failure, with the request id', async () => {
    const res = await api('GET', '/jobs', undefined, 'FJAAAAAAAAAAAAAAAAAA.wrong');
    expect(res.status).toBe(401);
    const requestId = res.headers.get('x-amzn-requestid');
    const warn = await log.waitFor('auth failure', (l) => l.msg === 'operator authentication failed');
    expect(warn).toMatchObject({ level: 40, requestId, reason: 'the key is not valid or was revoked' });
    // The token is never logged.
    expect(JSON.stringify(log.lines)).not.toContain('FJAAAAAAAAAAAAAAAAAA.wrong');
  });

  it('logs device connect, refusal and disconnect, and each job created, completed, canceled and deleted', async () => {
    expect((await api('POST', '/things/log-dev', {})).status).toBe(200);
    const { secret } = (await (await api('POST', '/things/log-dev/credentials')).json()) as {
      secret: string;
    };
    expect((await api('PUT', '/jobs/log-done', { targets: ['thing/log-dev'], document: '{}' })).status).toBe(
      200,
    );
    expect(
      (await api('PUT', '/jobs/log-cancel', { targets: ['thing/log-dev'], document: '{}' })).status,
    ).toBe(200);
    expect(
      await log.waitFor('job created', (l) => l.msg === 'job created' && l.jobId === 'log-done'),
    ).toMatchObject({ level: 30, status: 'IN_PROGRESS', targetSelection: 'SNAPSHOT', targets: 1 });

    const refused = mqtt.connect(app.addresses.mqtt, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: 'log-dev',
      username: 'log-dev',
      password: 'not-the-secret',
    });
    await new Promise<void>((resolve) => refused.once('error', () => resolve()));
    refused.end(true);
    expect(
      await log.waitFor('refusal', (l) => l.msg === 'device connection refused' && l.username === 'log-dev'),
    ).toMatchObject({ level: 40, clientId: 'log-dev' });
    expect(JSON.stringify(log.lines)).not.toContain('not-the-secret');

    const device = await connectDevice(app.addresses.mqtt, {
      clientId: 'log-dev',
      username: 'log-dev',
      password: secret,
    });
    expect(
      await log.waitFor('connect', (l) => l.msg === 'device connected' && l.clientId === 'log-dev'),
    ).toMatchObject({ level: 30, thingName: 'log-dev' });
    const root = '$aws/things/log-dev/jobs';
    expect((await deviceRequest(device, `${root}/log-done/update`, { status: 'SUCCEEDED' })).outcome).toBe(
      'accepted',
    );
    const completed = await log.waitFor(
      'completed',
      (l) => l.msg === 'job completed' && l.jobId === 'log-done',
    );
    expect(completed).toMatchObject({
      level: 30,
      status: 'COMPLETED',
      jobProcessDetails: expect.objectContaining({ numberOfSucceededThings: 1 }),
    });
    await device.endAsync();
    expect(
      await log.waitFor('disconnect', (l) => l.msg === 'device disconnected' && l.clientId === 'log-dev'),
    ).toMatchObject({ thingName: 'log-dev' });

    expect((await api('PUT', '/jobs/log-cancel/cancel', { reasonCode: 'OPS' })).status).toBe(200);
    expect(
      await log.waitFor('canceled', (l) => l.msg === 'job canceled' && l.jobId === 'log-cancel'),
    ).toMatchObject({ status: 'CANCELED', reasonCode: 'OPS' });
    expect((await api('DELETE', '/jobs/log-cancel')).status).toBe(200);
    await log.waitFor('deleted', (l) => l.msg === 'job deleted' && l.jobId === 'log-cancel');
    // One line per event, however many outbox rows went with it.
    expect(log.lines.filter((l) => l.msg === 'job completed' && l.jobId === 'log-done')).toHaveLength(1);
  });
});

describe('the serve logger', () => {
  const sink = (isTTY: boolean) => {
    let text = '';
    return { isTTY, write: (s: string) => void (text += s), text: () => text };
  };
  const ESC = String.fromCharCode(27);
  const plain = (s: string) =>
    s
      .split(ESC)
      .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, '')))
      .join('');

  it('writes JSON lines when stdout is not a terminal, pretty lines when it is, as LOG_FORMAT=auto', () => {
    const pipe = sink(false);
    createCliLogger({ logLevel: 'info', logFormat: 'auto' }, pipe).info({ jobId: 'j1' }, 'job created');
    expect(JSON.parse(pipe.text())).toMatchObject({ level: 30, msg: 'job created', jobId: 'j1' });

    const tty = sink(true);
    createCliLogger({ logLevel: 'info', logFormat: 'auto' }, tty).info({ jobId: 'j1' }, 'job created');
    expect(tty.text()).toContain(`${ESC}[`);
    expect(plain(tty.text())).toMatch(/INFO.*job created/);
    expect(plain(tty.text())).toContain('jobId: "j1"');
    expect(() => JSON.parse(tty.text())).toThrow();
  });

  it('follows LOG_FORMAT=json on a terminal and LOG_FORMAT=pretty in a pipe', () => {
    const tty = sink(true);
    createCliLogger({ logLevel: 'info', logFormat: 'json' }, tty).info('started');
    expect(JSON.parse(tty.text())).toMatchObject({ msg: 'started' });
    const pipe = sink(false);
    createCliLogger({ logLevel: 'info', logFormat: 'pretty' }, pipe).info('started');
    expect(pipe.text()).toMatch(/INFO.*started/);
    // No colour codes where there is no terminal.
    expect(pipe.text()).not.toContain(ESC);
  });
});
