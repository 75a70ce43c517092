import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { insertThings } from '../../src/store/things.js';
import {
  CreateJobCommand,
  CreateThingCommand,
  DescribeJobCommand,
  IoTClient,
  ListThingsCommand,
} from '@aws-sdk/client-iot';

interface Key {
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
}

describe.each(BACKENDS)('operator authentication on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey | undefined;
  let operator: Key;
  let viewer: Key;
  let base: string;
  const masterKey = randomBytes(32);

  const call = (
    method: string,
    path: string,
    init: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  /** Signs with the AWS SDK's own signer, independent of the server's verifier. */
  const signed = async (
    key: Key,
    method: string,
    path: string,
    options: { body?: string; signingDate?: Date; query?: Record<string, string> } = {},
  ) => {
    const u = new URL(base);
    const signer = new SignatureV4({
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      region: 'local',
      service: 'iot',
      sha256: Sha256,
    });
    const request = await signer.sign(
      {
        method,
        protocol: 'http:',
        hostname: u.hostname,
        port: Number(u.port),
        path,
        query: options.query ?? {},
        headers: {
          host: u.host,
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(options.body !== undefined ? { body: options.body } : {}),
      },
      options.signingDate ? { signingDate: options.signingDate } : {},
    );
    return request as unknown as { headers: Record<string, string>; body?: string };
  };
  const send = (method: string, path: string, req: { headers: Record<string, string> }, body?: string) => {
    const { host: _host, ...headers } = req.headers;
    return fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    await insertThings(t.db, ['sensor-1'], new Date());
    app = await startTestServer({ db: t.db, auth: { masterKey, onAdminKeyCreated: (k) => (admin = k) } });
    base = app.addresses.http;
    const make = async (role: string) =>
      (await (await call('POST', '/operator-keys', { token: admin?.token, body: { role } })).json()) as Key;
    operator = await make('operator');
    viewer = await make('viewer');
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
  });

  it('creates one admin key on the first start of an empty store', async () => {
    expect(admin?.role).toBe('admin');
    expect(admin?.token).toMatch(/^FJ[A-Z2-7]{18}\.[A-Za-z0-9_-]{43}$/);
    const rows = await t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM operator_keys WHERE role = 'admin'`,
    );
    expect(rows[0]?.n).toBe(1);
  });

  it('prints the admin key once: a second start on the same store creates none', async () => {
    let again: CreatedOperatorKey | undefined;
    const second = await startTestServer({ db: t.db, auth: { onAdminKeyCreated: (k) => (again = k) } });
    await second.close();
    expect(again).toBeUndefined();
    const rows = await t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM operator_keys WHERE role = 'admin'`,
    );
    expect(rows[0]?.n).toBe(1);
  });

  it('stores no secret: neither the operator secret nor the bearer token appears in the table', async () => {
    const rows = await t.db.query<Record<string, unknown>>('SELECT * FROM operator_keys');
    const text = JSON.stringify(rows);
    expect(text).not.toContain(operator.secretAccessKey);
    expect(text).not.toContain(admin?.secretAccessKey);
    expect(text).toContain(operator.accessKeyId);
  });

  it('answers 401 without a key, with a wrong key, a malformed header and a revoked key; /healthz stays open', async () => {
    const none = await call('GET', '/operator-keys');
    expect(none.status).toBe(401);
    expect(none.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    expect((await call('GET', '/jobs/any')).status).toBe(401);
    expect((await call('GET', '/operator-keys', { token: `${operator.accessKeyId}.wrong` })).status).toBe(
      401,
    );
    expect((await call('GET', '/operator-keys', { headers: { authorization: 'Basic YTpi' } })).status).toBe(
      401,
    );
    expect((await call('GET', '/healthz')).status).toBe(200);

    const doomed = (await (
      await call('POST', '/operator-keys', { token: admin?.token, body: { role: 'operator' } })
    ).json()) as Key;
    expect((await call('GET', '/things/sensor-1/credentials', { token: doomed.token })).status).toBe(200);
    expect(
      (await call('DELETE', `/operator-keys/${doomed.accessKeyId}`, { token: admin?.token })).status,
    ).toBe(200);
    expect((await call('GET', '/things/sensor-1/credentials', { token: doomed.token })).status).toBe(401);
  });

  it('answers 403 to a viewer on a write and to an operator on operator keys', async () => {
    const write = await call('POST', '/things/sensor-1/credentials', { token: viewer.token });
    expect(write.status).toBe(403);
    expect(write.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    expect((await call('PUT', '/jobs/j1', { token: viewer.token, body: { targets: [] } })).status).toBe(403);
    expect(
      (await call('POST', '/operator-keys', { token: operator.token, body: { role: 'admin' } })).status,
    ).toBe(403);
    expect((await call('GET', '/operator-keys', { token: viewer.token })).status).toBe(403);
    const rows = await t.db.query<{ n: number }>('SELECT count(*) AS n FROM thing_credentials');
    expect(rows[0]?.n).toBe(0);
  });

  it('accepts a SigV4 request signed with an operator key, with and without a body', async () => {
    const get = await signed(operator, 'GET', '/things/sensor-1/credentials');
    expect((await send('GET', '/things/sensor-1/credentials', get)).status).toBe(200);
    const body = JSON.stringify({ role: 'viewer', description: 'signed' });
    const post = await signed(admin as Key, 'POST', '/operator-keys', { body });
    const res = await send('POST', '/operator-keys', post, body);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { description: string }).description).toBe('signed');
  });

  it('refuses a SigV4 request whose signature, body, path or query was changed', async () => {
    const get = await signed(operator, 'GET', '/things/sensor-1/credentials');
    const badSig = {
      headers: {
        ...get.headers,
        authorization: get.headers.authorization!.replace(
          /Signature=(.)/,
          (_m, c: string) => `Signature=${c === 'a' ? 'b' : 'a'}`,
        ),
      },
    };
    expect((await send('GET', '/things/sensor-1/credentials', badSig)).status).toBe(401);
    expect((await send('GET', '/things/sensor-2/credentials', get)).status).toBe(401);

    const q = await signed(admin as Key, 'GET', '/operator-keys', { query: { maxResults: '5' } });
    expect((await send('GET', '/operator-keys?maxResults=5', q)).status).toBe(200);
    expect((await send('GET', '/operator-keys?maxResults=6', q)).status).toBe(401);

    const body = JSON.stringify({ role: 'viewer' });
    const post = await signed(admin as Key, 'POST', '/operator-keys', { body });
    const swapped = JSON.stringify({ role: 'admin' });
    // The signed x-amz-content-sha256 no longer matches; without it the signature would not.
    expect((await send('POST', '/operator-keys', post, swapped)).status).toBe(401);
    const { 'x-amz-content-sha256': _h, ...noHash } = post.headers;
    expect((await send('POST', '/operator-keys', { headers: noHash }, swapped)).status).toBe(401);
    const wrongSecret = await signed(
      { ...operator, secretAccessKey: 'not-the-secret' },
      'GET',
      '/things/sensor-1/credentials',
    );
    expect((await send('GET', '/things/sensor-1/credentials', wrongSecret)).status).toBe(401);
    const keys = await t.db.query<{ n: number }>(
      `SELECT count(*) AS n FROM operator_keys WHERE role = 'admin'`,
    );
    expect(keys[0]?.n).toBe(1);
    expect(createHash('sha256').update(swapped).digest('hex')).not.toBe(post.headers['x-amz-content-sha256']);
  });

  it('refuses a SigV4 request dated outside the allowed clock skew (a replay) with 401', async () => {
    const old = await signed(operator, 'GET', '/things/sensor-1/credentials', {
      signingDate: new Date(Date.now() - 6 * 60_000),
    });
    const res = await send('GET', '/things/sensor-1/credentials', old);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toMatch(/X-Amz-Date/);
    const future = await signed(operator, 'GET', '/things/sensor-1/credentials', {
      signingDate: new Date(Date.now() + 6 * 60_000),
    });
    expect((await send('GET', '/things/sensor-1/credentials', future)).status).toBe(401);
  });

  it('lets @aws-sdk/client-iot work with an operator key as its real credentials, and refuses a viewer and a bad secret', async () => {
    const client = (key: Key) =>
      new IoTClient({
        endpoint: base,
        region: 'local',
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        maxAttempts: 1,
      });
    const iot = client(operator);
    try {
      await iot.send(new CreateThingCommand({ thingName: 'sdk-thing' }));
      const things = await iot.send(new ListThingsCommand({}));
      expect(things.things?.map((x) => x.thingName)).toContain('sdk-thing');
      await iot.send(
        new CreateJobCommand({ jobId: 'sdk-job', targets: ['thing/sdk-thing'], document: '{"op":"x"}' }),
      );
      expect((await iot.send(new DescribeJobCommand({ jobId: 'sdk-job' }))).job?.jobId).toBe('sdk-job');
    } finally {
      iot.destroy();
    }
    const asViewer = client(viewer);
    const forged = client({ ...operator, secretAccessKey: 'x'.repeat(43) });
    try {
      expect((await asViewer.send(new ListThingsCommand({}))).things?.length).toBeGreaterThan(0);
      await expect(
        asViewer.send(new CreateThingCommand({ thingName: 'viewer-thing' })),
      ).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
      await expect(forged.send(new ListThingsCommand({}))).rejects.toMatchObject({
        name: 'UnauthorizedException',
        $metadata: { httpStatusCode: 401 },
      });
    } finally {
      asViewer.destroy();
      forged.destroy();
    }
    const rows = await t.db.query<{ thingName: string }>(`SELECT thing_name FROM things ORDER BY thing_name`);
    expect(rows.map((r) => r.thingName)).toEqual(['sdk-thing', 'sensor-1']);
  });

  it('answers 429 with Retry-After past the per-key rate set by OPERATOR_RATE_LIMIT, for keys and for bad callers', async () => {
    // A second server on the same store and master key, with a tight limit: the keys made above work there.
    const limited = await startTestServer({
      db: t.db,
      auth: { masterKey },
      config: { operatorRateLimit: { perSecond: 0.001, burst: 2 } },
    });
    try {
      const url = `${limited.addresses.http}/operator-keys`;
      const statuses = async (headers: Record<string, string>) => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await fetch(url, { headers })).status);
        return out;
      };
      expect(await statuses({ authorization: `Bearer ${admin?.token}` })).toEqual([200, 200, 429]);
      // Another key has its own bucket; callers without a valid key share their address's.
      expect(await statuses({ authorization: `Bearer ${viewer.token}` })).toEqual([403, 403, 429]);
      expect(await statuses({})).toEqual([401, 401, 429]);
      const res = await fetch(url, {});
      expect(res.status).toBe(429);
      expect(res.headers.get('x-amzn-errortype')).toBe('ThrottlingException');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it('refuses to revoke the last active admin key', async () => {
    const res = await call('DELETE', `/operator-keys/${admin?.accessKeyId}`, { token: admin?.token });
    expect(res.status).toBe(409);
    expect((await call('GET', '/operator-keys', { token: admin?.token })).status).toBe(200);
  });
});
