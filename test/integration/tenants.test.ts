import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { GetPendingJobExecutionsCommand, IoTJobsDataPlaneClient } from '@aws-sdk/client-iot-jobs-data-plane';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';
import { tenantDb } from '../../src/store/db.js';
import { runKeysCli } from '../../src/cli/keys.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** What one SSE stream carried: the event names and the jobIds of their payloads. */
interface Stream {
  seen: { event: string; jobId: string }[];
  close(): void;
}

// Two tenants beside the default one, each with an admin key; every check goes through the REST API, MQTT, the
// device HTTPS plane and GET /events as a client would.
describe.each(BACKENDS)('tenants on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey;
  const keys: Record<'acme' | 'globex', { token: string; accessKeyId: string; secretAccessKey: string }> =
    {} as never;
  const masterKey = randomBytes(32);
  const devices: MqttClient[] = [];
  const streams: Stream[] = [];

  const call = async (token: string, method: string, path: string, body?: unknown): Promise<Reply> => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const json = res.headers.get('content-type')?.includes('json') === true && text !== '';
    return { status: res.status, body: json ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const as = (tenant: 'acme' | 'globex' | 'default') => {
    const token = tenant === 'default' ? admin.token : keys[tenant].token;
    return (method: string, path: string, body?: unknown) => call(token, method, path, body);
  };
  const names = (list: unknown, key: string) =>
    (list as Record<string, string>[]).map((x) => x[key] as string).sort();

  /** Opens GET /events as the tenant's key and records what arrives. */
  const openStream = async (tenant: 'acme' | 'globex', query = ''): Promise<Stream> => {
    const abort = new AbortController();
    const res = await fetch(`${app.addresses.http}/events${query}`, {
      headers: { authorization: `Bearer ${keys[tenant].token}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const stream: Stream = { seen: [], close: () => abort.abort() };
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (event !== undefined && data !== undefined) {
              stream.seen.push({ event, jobId: (JSON.parse(data) as { jobId: string }).jobId });
            }
          }
        }
      } catch {
        // aborted at close
      }
    })();
    streams.push(stream);
    return stream;
  };
  const until = async (what: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({
      db: t.db,
      auth: { masterKey, onAdminKeyCreated: (k) => (admin = k) },
      config: { deviceHttpPort: 0 },
      workers: { eventsTickMs: 50 },
    });
    for (const tenant of ['acme', 'globex'] as const) {
      expect((await as('default')('PUT', `/tenants/${tenant}`, { description: tenant })).status).toBe(200);
      const key = await as('default')('POST', '/operator-keys', { role: 'admin', tenantId: tenant });
      expect(key.status).toBe(200);
      expect(key.body.tenantId).toBe(tenant);
      keys[tenant] = key.body as never;
      const api = as(tenant);
      const p = tenant === 'acme' ? 'a' : 'b';
      expect((await api('POST', `/things/${p}-1`)).status).toBe(200);
      expect((await api('POST', `/things/${p}-2`)).status).toBe(200);
      expect((await api('POST', `/thing-groups/${p}-group`)).status).toBe(200);
      expect(
        (
          await api('PUT', '/thing-groups/addThingToThingGroup', {
            thingGroupName: `${p}-group`,
            thingName: `${p}-2`,
          })
        ).status,
      ).toBe(200);
      expect(
        (await api('PUT', `/job-templates/${p}-template`, { description: 'x', document: '{"op":"t"}' }))
          .status,
      ).toBe(200);
      expect(
        (
          await api('PUT', `/job-schedules/${p}-schedule`, {
            scheduleExpression: 'rate(1 hour)',
            jobTemplateArn: `${p}-template`,
            targets: [`thing/${p}-1`],
          })
        ).status,
      ).toBe(200);
      for (const job of [`${p}-job`, `${p}-job-2`, `${p}-job-3`]) {
        expect(
          (await api('PUT', `/jobs/${job}`, { targets: [`thing/${p}-1`], document: `{"for":"${tenant}"}` }))
            .status,
        ).toBe(200);
      }
    }
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await Promise.all(devices.map((d) => d.endAsync(true)));
    await app?.close();
    await t?.close();
  });

  it('lists only the tenant s own things, groups, jobs, templates, schedules, executions and keys', async () => {
    for (const [tenant, p] of [
      ['acme', 'a'],
      ['globex', 'b'],
    ] as const) {
      const api = as(tenant);
      expect(names((await api('GET', '/things')).body.things, 'thingName')).toEqual([`${p}-1`, `${p}-2`]);
      expect(names((await api('GET', '/thing-groups')).body.thingGroups, 'groupName')).toEqual([
        `${p}-group`,
      ]);
      expect(names((await api('GET', '/jobs')).body.jobs, 'jobId')).toEqual([
        `${p}-job`,
        `${p}-job-2`,
        `${p}-job-3`,
      ]);
      expect(names((await api('GET', '/job-templates')).body.jobTemplates, 'jobTemplateId')).toEqual([
        `${p}-template`,
      ]);
      expect(names((await api('GET', '/job-schedules')).body.schedules, 'scheduleId')).toEqual([
        `${p}-schedule`,
      ]);
      expect((await api('GET', '/operator-keys')).body.keys).toEqual([
        expect.objectContaining({ accessKeyId: keys[tenant].accessKeyId, tenantId: tenant }),
      ]);
    }
    // The default tenant keeps what it had: its first admin key, and none of the tenants' rows.
    expect((await as('default')('GET', '/things')).body.things).toEqual([]);
    expect((await as('default')('GET', '/jobs')).body.jobs).toEqual([]);
    expect(names((await as('default')('GET', '/operator-keys')).body.keys, 'accessKeyId')).toEqual([
      admin.accessKeyId,
    ]);
  });

  it('answers another tenant s things, jobs, templates and schedules as ones that do not exist', async () => {
    const a = as('acme');
    for (const path of [
      '/things/b-1',
      '/thing-groups/b-group',
      '/thing-groups/b-group/things',
      '/jobs/b-job',
      '/jobs/b-job/job-document',
      '/jobs/b-job/things',
      '/things/b-1/jobs',
      '/things/b-1/jobs/b-job',
      '/job-templates/b-template',
      '/job-schedules/b-schedule',
      '/job-schedules/b-schedule/runs',
    ]) {
      expect([path, (await a('GET', path)).status]).toEqual([path, 404]);
    }
    expect((await a('PUT', '/jobs/b-job/cancel', {})).status).toBe(404);
    expect((await a('PUT', '/things/b-1/jobs/b-job/cancel', {})).status).toBe(404);
    expect((await a('DELETE', '/things/b-1/jobs/b-job/executionNumber/1?force=true')).status).toBe(404);
    expect((await a('DELETE', '/jobs/b-job')).status).toBe(404);
    expect((await a('DELETE', '/job-templates/b-template')).status).toBe(404);
    expect((await a('DELETE', '/job-schedules/b-schedule')).status).toBe(404);
    expect((await a('PUT', '/job-schedules/b-schedule/pause')).status).toBe(404);
    // DeleteThing of a thing that does not exist succeeds, as on AWS: and leaves globex's thing alone.
    expect((await a('DELETE', '/things/b-1')).status).toBe(200);
    expect(
      (await a('PUT', '/thing-groups/addThingToThingGroup', { thingGroupName: 'a-group', thingName: 'b-1' }))
        .status,
    ).toBe(404);
    // A job of acme cannot target globex's things or groups.
    expect((await a('PUT', '/jobs/a-steal', { targets: ['thing/b-1'], document: '{}' })).status).toBe(404);
    expect(
      (await a('PUT', '/jobs/a-steal', { targets: ['thinggroup/b-group'], document: '{}' })).status,
    ).toBe(404);
    // Names are the deployment's: taking one that globex holds is a conflict, and changes nothing of globex's.
    expect((await a('POST', '/things/b-1', { thingTypeName: 'other' })).status).toBe(409);
    expect((await a('PUT', '/jobs/b-job', { targets: ['thing/a-1'], document: '{}' })).status).toBe(409);
    expect((await a('PUT', '/job-templates/b-template', { description: 'x', document: '{}' })).status).toBe(
      409,
    );
    expect(
      (
        await a('PUT', '/job-schedules/b-schedule', {
          scheduleExpression: 'rate(1 hour)',
          jobTemplateArn: 'a-template',
          targets: ['thing/a-1'],
        })
      ).status,
    ).toBe(409);

    const b = as('globex');
    expect((await b('GET', '/things/b-1')).status).toBe(200);
    expect(((await b('GET', '/jobs/b-job')).body.job as { status: string }).status).toBe('IN_PROGRESS');
    expect((await b('GET', '/job-templates/b-template')).status).toBe(200);
    expect(((await b('GET', '/job-schedules/b-schedule')).body as { state: string }).state).toBe('ENABLED');
    expect(names((await b('GET', '/thing-groups/b-group/things')).body.things, '')).toHaveLength(1);
    expect(names((await b('GET', '/jobs/b-job/things')).body.executionSummaries, 'thingArn')).toHaveLength(1);
    expect(((await b('GET', '/things/b-1/jobs/b-job')).body.execution as { status: string }).status).toBe(
      'QUEUED',
    );
  });

  it('keeps tenants and keys to the deployment s admins, and a tenant s admin to its own keys', async () => {
    const a = as('acme');
    expect((await a('GET', '/tenants')).status).toBe(403);
    expect((await a('PUT', '/tenants/acme-2', {})).status).toBe(403);
    expect((await a('GET', '/metrics')).status).toBe(403);
    expect((await a('POST', '/operator-keys', { role: 'admin', tenantId: 'globex' })).status).toBe(403);
    expect((await a('GET', `/operator-keys?tenantId=globex`)).status).toBe(403);
    expect((await a('DELETE', `/operator-keys/${keys.globex.accessKeyId}`)).status).toBe(404);
    const viewer = await a('POST', '/operator-keys', { role: 'viewer' });
    expect(viewer.body.tenantId).toBe('acme');
    expect((await call(viewer.body.token as string, 'GET', '/things/a-1')).status).toBe(200);
    expect((await call(viewer.body.token as string, 'GET', '/things/b-1')).status).toBe(404);
    expect((await a('DELETE', `/operator-keys/${viewer.body.accessKeyId as string}`)).status).toBe(200);

    const d = as('default');
    expect(names((await d('GET', '/tenants')).body.tenants, 'tenantId')).toEqual([
      'acme',
      'default',
      'globex',
    ]);
    expect((await d('GET', '/tenants/acme')).body).toMatchObject({ tenantId: 'acme', description: 'acme' });
    expect((await d('GET', '/tenants/nope')).status).toBe(404);
    expect((await d('PUT', '/tenants/Bad_Id', {})).status).toBe(400);
    expect((await d('POST', '/operator-keys', { role: 'viewer', tenantId: 'nope' })).status).toBe(404);
    expect(names((await d('GET', '/operator-keys?tenantId=globex')).body.keys, 'accessKeyId')).toEqual([
      keys.globex.accessKeyId,
    ]);
    // globex's only admin key is its last: not even the deployment's admin revokes it.
    expect((await d('DELETE', `/operator-keys/${keys.globex.accessKeyId}?tenantId=globex`)).status).toBe(409);
    expect((await d('GET', '/metrics')).status).toBe(200);
  });

  it('gives a tenant s device only that tenant s jobs over MQTT and HTTPS', async () => {
    const secret = async (tenant: 'acme' | 'globex', thing: string) =>
      (await as(tenant)('POST', `/things/${thing}/credentials`)).body.secret as string;
    const aSecret = await secret('acme', 'a-1');
    expect((await as('acme')('POST', '/things/b-1/credentials')).status).toBe(404);
    const device = await connectDevice(app.addresses.mqtt, {
      clientId: 'a-1',
      username: 'a-1',
      password: aSecret,
    });
    devices.push(device);
    const pending = await deviceRequest(device, '$aws/things/a-1/jobs/get', { clientToken: 'p' });
    expect(pending.outcome).toBe('accepted');
    expect(names(pending.json?.queuedJobs, 'jobId')).toEqual(['a-job', 'a-job-2', 'a-job-3']);
    const started = await deviceRequest(device, '$aws/things/a-1/jobs/start-next', { clientToken: 's' });
    expect(started.json?.execution).toMatchObject({ jobId: 'a-job', jobDocument: { for: 'acme' } });

    // An acme key on the device plane acts for acme's things only.
    const dataPlane = new IoTJobsDataPlaneClient({
      endpoint: app.addresses.deviceHttp as string,
      region: 'local',
      credentials: { accessKeyId: keys.acme.accessKeyId, secretAccessKey: keys.acme.secretAccessKey },
      maxAttempts: 1,
    });
    try {
      const own = await dataPlane.send(new GetPendingJobExecutionsCommand({ thingName: 'a-1' }));
      expect(own.inProgressJobs?.map((j) => j.jobId)).toEqual(['a-job']);
      await expect(
        dataPlane.send(new GetPendingJobExecutionsCommand({ thingName: 'b-1' })),
      ).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
      });
    } finally {
      dataPlane.destroy();
    }
  });

  it('streams each tenant only its own events on GET /events, progress included', async () => {
    const aStream = await openStream('acme', '?progress=true');
    const bStream = await openStream('globex');
    await until(() => aStream.seen.some((e) => e.event === 'jobProgress'));
    // In commit order: globex, acme, globex. A leak would reach each stream before its own next event.
    expect((await as('globex')('PUT', '/jobs/b-job-2/cancel', {})).status).toBe(200);
    expect((await as('acme')('PUT', '/jobs/a-job-2/cancel', {})).status).toBe(200);
    expect((await as('globex')('PUT', '/jobs/b-job-3/cancel', {})).status).toBe(200);
    await until(() => aStream.seen.some((e) => e.event === 'job' && e.jobId === 'a-job-2'));
    await until(() => bStream.seen.some((e) => e.event === 'job' && e.jobId === 'b-job-3'));
    expect(aStream.seen.every((e) => e.jobId.startsWith('a-'))).toBe(true);
    expect(bStream.seen.every((e) => e.jobId.startsWith('b-'))).toBe(true);
    expect(bStream.seen.filter((e) => e.event === 'job').map((e) => e.jobId)).toEqual(['b-job-2', 'b-job-3']);
  });

  it('keeps an unfiltered statement in a tenant transaction to that tenant s rows (row-level security)', async () => {
    const count = async (db: typeof t.db, where = '') =>
      (await db.query<{ n: number }>(`SELECT count(*) AS n FROM job_executions ${where}`))[0]?.n;
    const all = await count(t.db);
    const acme = await count(t.db, `WHERE tenant_id = 'acme'`);
    expect(acme).toBeGreaterThan(0);
    expect(all).toBeGreaterThan(acme as number);
    expect(await count(tenantDb(t.db, () => 'acme'))).toBe(acme);
    expect(
      await tenantDb(t.db, () => 'acme').transaction((tx) => tx.query('SELECT count(*) AS n FROM jobs')),
    ).toEqual([{ n: 3 }]);
    expect(await count(tenantDb(t.db, () => 'nobody'))).toBe(0);
    // Nor can it write a row into another tenant.
    await expect(
      tenantDb(t.db, () => 'acme').query(
        `INSERT INTO things (thing_name, thing_id, created_at, tenant_id) VALUES ('x', gen_random_uuid(), now(), 'globex')`,
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(
      tenantDb(t.db, () => 'acme').query(`UPDATE jobs SET comment = 'mine' WHERE job_id = 'b-job'`),
    ).resolves.toEqual([]);
    expect((await t.db.query(`SELECT comment FROM jobs WHERE job_id = 'b-job'`))[0]).toEqual({
      comment: null,
    });
    // Rows system code wrote (device batches, workers) took their parent's tenant.
    expect(
      await t.db.query(
        `SELECT DISTINCT e.tenant_id = j.tenant_id AS same FROM events e JOIN jobs j USING (job_id)
         UNION SELECT DISTINCT x.tenant_id = j.tenant_id FROM job_executions x JOIN jobs j USING (job_id)`,
      ),
    ).toEqual([{ same: true }]);
  });

  it('creates a schedule s jobs as its tenant', async () => {
    expect(await app.workers.schedules.runOnce(new Date(Date.now() + 2 * 3600_000))).toBe(2);
    const rows = await t.db.query<{ jobId: string; tenantId: string }>(
      `SELECT job_id, tenant_id FROM jobs WHERE job_id LIKE '%-schedule-%' ORDER BY job_id`,
    );
    expect(rows.map((r) => [r.jobId.slice(0, 10), r.tenantId])).toEqual([
      ['a-schedule', 'acme'],
      ['b-schedule', 'globex'],
    ]);
    expect(
      names((await as('acme')('GET', '/jobs')).body.jobs, 'jobId').filter((j) => j.includes('schedule')),
    ).toEqual([rows[0]?.jobId]);
  });

  it('puts every tenant-owned table under row-level security', async () => {
    const tables = await t.db.query<{ name: string; rls: boolean; tenant: boolean }>(
      `SELECT c.relname AS name, c.relrowsecurity AS rls,
         EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id') AS tenant
       FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
       ORDER BY c.relname`,
    );
    const system = ['deployment_settings', 'fleetjobs_migrations', 'outbox', 'tenants'];
    expect(tables.filter((r) => !system.includes(r.name) && !(r.rls && r.tenant))).toEqual([]);
    // The system's tables: the tenant role writes notifications to the outbox and reads the deployment's region;
    // it reads no outbox row, and nothing else.
    const privileges = await t.db.query<{ name: string; p: string }>(
      `SELECT c.relname AS name, p.p FROM pg_class c
       CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(p)
       WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1::text[])
         AND has_table_privilege('fleetjobs_tenant', c.oid, p.p)
       ORDER BY 1, 2`,
      [system],
    );
    expect(privileges).toEqual([
      { name: 'deployment_settings', p: 'SELECT' },
      { name: 'outbox', p: 'INSERT' },
    ]);
    await expect(tenantDb(t.db, () => 'acme').query('SELECT count(*) FROM outbox')).rejects.toThrow(
      /permission denied/,
    );
  });

  it.skipIf(backend !== 'postgres')('makes tenants and their keys from the CLI', async () => {
    let out = '';
    const url = new URL(t.url as string);
    url.searchParams.set('search_path', t.schema as string);
    const io = {
      env: { DATABASE_URL: url.toString(), FLEETJOBS_MASTER_KEY: masterKey.toString('base64') },
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (out += s) },
    };
    expect(await runKeysCli(['create', 'initech', '--description', 'from the CLI'], io, 'tenants')).toBe(0);
    expect(await runKeysCli(['create', '--admin', '--tenant', 'initech'], io)).toBe(0);
    const token = /FLEETJOBS_TOKEN=(\S+)/.exec(out)?.[1] as string;
    expect((await call(token, 'GET', '/things')).body.things).toEqual([]);
    expect((await call(token, 'GET', '/things/a-1')).status).toBe(404);
    out = '';
    expect(await runKeysCli(['list'], io, 'tenants')).toBe(0);
    expect(out).toMatch(/initech\s+\S+\s+from the CLI/);
    expect(await runKeysCli(['create', '--tenant', 'nope'], io)).toBe(1);
  });
});
