import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, createTestDb, TEST_DATABASE_URL, type TestDb } from '../helpers/db.js';
import { createPgliteDb, createPostgresDb, type Db } from '../../src/store/db.js';
import { loadMigrations, migrate } from '../../src/store/migrate.js';
import { selectJobTemplate, selectJobTemplateVersion } from '../../src/store/templates.js';
import { startTestServer } from '../helpers/server.js';
import { operatorClient } from '../helpers/operator.js';
import type { FleetJobs } from '../../src/app.js';

const SCHEMA = {
  type: 'object',
  required: ['url', 'version'],
  additionalProperties: false,
  properties: {
    url: { type: 'string', format: 'uri' },
    version: { type: 'string', pattern: '^\\d+\\.\\d+$' },
  },
};

describe.each(BACKENDS)('job template versions, parameter schemas, export and import on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let dir: string;
  const { rest, cli } = operatorClient(() => app.addresses.http);
  const v1 = {
    description: 'firmware v1',
    document: JSON.stringify({ op: 'flash', url: '${aws:iot:parameter:url}' }),
    documentParametersSchema: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
  };
  const v2 = {
    description: 'firmware v2',
    document: JSON.stringify({
      op: 'flash2',
      url: '${aws:iot:parameter:url}',
      version: '${aws:iot:parameter:version}',
    }),
    documentParametersSchema: SCHEMA,
    timeoutConfig: { inProgressTimeoutInMinutes: 30 },
  };
  const good = { url: 'https://example.com/fw.bin', version: '2.1' };

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db, workers: { autoStart: false } });
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-templates-'));
    expect((await rest('POST', '/things/tv-1')).status).toBe(200);
    expect((await rest('PUT', '/job-templates/fw', v1)).status).toBe(200);
    expect((await rest('GET', '/job-templates/fw')).body).toMatchObject({ versionNumber: 1 });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates versions, describes the latest and any version, and lists them oldest first', async () => {
    const created = await rest('POST', '/job-templates/fw/versions', v2);
    expect(created.status).toBe(200);
    expect(created.body).toEqual({
      jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/fw',
      jobTemplateId: 'fw',
      versionNumber: 2,
    });
    const latest = await rest('GET', '/job-templates/fw');
    expect(latest.body).toMatchObject({
      versionNumber: 2,
      description: 'firmware v2',
      document: v2.document,
    });
    const first = await rest('GET', '/job-templates/fw/versions/1');
    expect(first.body).toMatchObject({ versionNumber: 1, description: 'firmware v1', document: v1.document });
    expect(first.body).not.toHaveProperty('timeoutConfig');
    const listed = await rest('GET', '/job-templates/fw/versions?maxResults=1');
    expect(listed.body.versions).toMatchObject([{ versionNumber: 1, description: 'firmware v1' }]);
    const rest2 = await rest('GET', `/job-templates/fw/versions?nextToken=${String(listed.body.nextToken)}`);
    expect(rest2.body.versions).toMatchObject([{ versionNumber: 2 }]);
    expect((await rest('GET', '/job-templates/fw/versions/3')).status).toBe(404);
    expect((await rest('POST', '/job-templates/nope/versions', v1)).status).toBe(404);
    expect((await rest('GET', '/job-templates/nope/versions')).status).toBe(404);
  });

  it('CreateJob uses the latest version unless it names one, and records the version used', async () => {
    const latest = await rest('PUT', '/jobs/tv-latest', {
      targets: ['thing/tv-1'],
      jobTemplateArn: 'fw',
      documentParameters: good,
    });
    expect(latest.status).toBe(200);
    expect((await rest('GET', '/jobs/tv-latest')).body.job).toMatchObject({
      jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/fw',
      jobTemplateVersion: 2,
      timeoutConfig: { inProgressTimeoutInMinutes: 30 },
    });
    expect(JSON.parse((await rest('GET', '/jobs/tv-latest/job-document')).body.document as string)).toEqual({
      op: 'flash2',
      url: good.url,
      version: '2.1',
    });

    const pinned = await rest('PUT', '/jobs/tv-pinned', {
      targets: ['thing/tv-1'],
      jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/fw',
      jobTemplateVersion: 1,
      documentParameters: { url: 'u' },
    });
    expect(pinned.status).toBe(200);
    expect((await rest('GET', '/jobs/tv-pinned')).body.job).toMatchObject({ jobTemplateVersion: 1 });
    expect(JSON.parse((await rest('GET', '/jobs/tv-pinned/job-document')).body.document as string)).toEqual({
      op: 'flash',
      url: 'u',
    });

    const missing = await rest('PUT', '/jobs/tv-missing', {
      targets: ['thing/tv-1'],
      jobTemplateArn: 'fw',
      jobTemplateVersion: 7,
      documentParameters: good,
    });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain('no version 7');
    const noArn = await rest('PUT', '/jobs/tv-noarn', {
      targets: ['thing/tv-1'],
      document: '{}',
      jobTemplateVersion: 1,
    });
    expect(noArn.status).toBe(400);
  });

  it('refuses documentParameters that break the schema with a 400 listing each violation, creating nothing', async () => {
    const res = await rest('PUT', '/jobs/tv-bad', {
      targets: ['thing/tv-1'],
      jobTemplateArn: 'fw',
      documentParameters: { url: 'not a uri', extra: 'x' },
    });
    expect(res.status).toBe(400);
    expect(res.error).toBe('InvalidRequestException');
    const message = String(res.body.message);
    expect(message).toContain('documentParametersSchema');
    expect(message).toContain("documentParameters must have required property 'version'");
    expect(message).toContain('documentParameters must not have property extra');
    expect(message).toContain('documentParameters.url must match format "uri"');
    expect((await rest('GET', '/jobs/tv-bad')).status).toBe(404);
  });

  it('refuses a template whose documentParametersSchema is not a JSON Schema', async () => {
    const res = await rest('PUT', '/job-templates/bad-schema', {
      ...v1,
      documentParametersSchema: { type: 'no-such-type' },
    });
    expect(res.status).toBe(400);
    expect(String(res.body.message)).toContain('documentParametersSchema is not a valid JSON Schema');
    expect((await rest('GET', '/job-templates/bad-schema')).status).toBe(404);
  });

  it('exports a template with every version and imports it back, all or nothing', async () => {
    const exported = await rest('GET', '/job-templates/fw/export');
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({
      jobTemplateId: 'fw',
      versions: [
        { versionNumber: 1, ...v1 },
        { versionNumber: 2, ...v2 },
      ],
    });
    const copy = { ...exported.body, jobTemplateId: 'fw-copy' };
    const broken = {
      jobTemplateId: 'broken',
      versions: [{ description: 'no document' }],
    };
    const refused = await rest('POST', '/job-templates/import', { jobTemplates: [copy, broken] });
    expect(refused.status).toBe(400);
    expect((await rest('GET', '/job-templates/fw-copy')).status).toBe(404);

    const imported = await rest('POST', '/job-templates/import', { jobTemplates: [copy] });
    expect(imported.status).toBe(200);
    expect(imported.body.jobTemplates).toEqual([
      {
        jobTemplateArn: 'arn:aws:iot:local:000000000000:jobtemplate/fw-copy',
        jobTemplateId: 'fw-copy',
        versionNumber: 2,
      },
    ]);
    const again = await rest('GET', '/job-templates/fw-copy/export');
    expect(again.body.versions).toEqual(exported.body.versions);
    const duplicate = await rest('POST', '/job-templates/import', { jobTemplates: [copy] });
    expect(duplicate.status).toBe(409);
    expect(duplicate.error).toBe('ResourceAlreadyExistsException');
  });

  it('makes a template created before the versions migration its own version 1', async () => {
    const schema = `${t.schema ?? 'pglite'}_pre5`;
    let db: Db;
    if (backend === 'pglite') db = await createPgliteDb();
    else {
      await t.db.query(`CREATE SCHEMA ${schema}`);
      db = createPostgresDb({ url: TEST_DATABASE_URL, schema, max: 1 });
    }
    try {
      const all = await loadMigrations();
      await migrate(
        db,
        all.filter((m) => m.id < 5),
      );
      await db.query(
        `INSERT INTO job_templates (job_template_id, description, document, config, created_at)
         VALUES ('old', 'from 0.1', '{"op":"old"}', '{"timeoutConfig":{"inProgressTimeoutInMinutes":5}}', now())`,
      );
      await migrate(db, all);
      expect(await selectJobTemplate(db, 'old')).toMatchObject({ versionNumber: 1 });
      expect(await selectJobTemplateVersion(db, 'old', 1)).toMatchObject({
        description: 'from 0.1',
        document: '{"op":"old"}',
        config: { timeoutConfig: { inProgressTimeoutInMinutes: 5 } },
      });
    } finally {
      await db.close();
      if (backend === 'postgres') await t.db.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  it('drives versions, export and import from the CLI', async () => {
    const body = join(dir, 'v.json');
    await writeFile(body, JSON.stringify({ description: 'cli v1', document: '{"op":"cli"}' }));
    expect(
      (await rest('PUT', '/job-templates/cli-tpl', { description: 'cli v0', document: '{"op":0}' })).status,
    ).toBe(200);
    const created = await cli(['templates', 'create-version', 'cli-tpl', '--file', body]);
    expect(created).toMatchObject({ code: 0, out: 'created version 2 of job template cli-tpl\n' });
    const versions = await cli(['templates', 'versions', 'cli-tpl']);
    expect(versions.out).toMatch(/^VERSION.*\n1\s.*cli v0\n2\s.*cli v1\n$/);

    const file = join(dir, 'export.json');
    expect((await cli(['templates', 'export', 'cli-tpl', '--file', file])).code).toBe(0);
    expect((await rest('DELETE', '/job-templates/cli-tpl')).status).toBe(200);
    const imported = await cli(['templates', 'import', '--file', file]);
    expect(imported).toMatchObject({ code: 0, out: 'imported job template cli-tpl (latest version 2)\n' });
    expect((await rest('GET', '/job-templates/cli-tpl/versions/1')).body).toMatchObject({
      description: 'cli v0',
    });
    const listed = await cli(['templates', 'list']);
    expect(listed.out).toMatch(/cli-tpl\s.*cli v1\n/);
  });
});
