import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';

interface Response {
  description?: string;
  content?: Record<string, { schema?: Schema }>;
  headers?: Record<string, unknown>;
}
interface Operation {
  summary?: string;
  operationId?: string;
  requestBody?: unknown;
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  info: { license?: unknown };
  servers?: unknown;
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, unknown> };
  security?: unknown;
}

/** JSON Schema as the document shows it, enough to walk it. */
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
}

/**
 * The object schemas in a response schema that would serialise every value as `{}`: fast-json-stringify keeps
 * only the members an object lists, so an object lists its members or says what its other members are.
 */
function closedEmptyObjects(schema: Schema, at: string): string[] {
  const found: string[] = [];
  const isObject = schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object'));
  if (isObject && schema.properties === undefined && schema.additionalProperties === undefined)
    found.push(at);
  for (const [k, v] of Object.entries(schema.properties ?? {}))
    found.push(...closedEmptyObjects(v, `${at}.${k}`));
  if (typeof schema.additionalProperties === 'object') {
    found.push(...closedEmptyObjects(schema.additionalProperties, `${at}.*`));
  }
  if (schema.items !== undefined) found.push(...closedEmptyObjects(schema.items, `${at}[]`));
  return found;
}

describe.each(BACKENDS)('the OpenAPI document on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let doc: Document;
  beforeAll(async () => {
    t = await createTestDb(backend);
    // Auth on, so that every operator route (operator keys too) is in the document.
    app = await startTestServer({ db: t.db, auth: {} });
    doc = (await (await fetch(`${app.addresses.http}/docs/json`)).json()) as Document;
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  const operations = (): [string, string, Operation][] =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]): [string, string, Operation] => [path, method, op]),
    );

  it('passes swagger-parser validation as OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    // validate() dereferences in place; the document under test stays as served.
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('shows every control-plane route with its request schema', () => {
    const expected: [string, string][] = [
      ['/things/{thingName}', 'post'],
      ['/things/{thingName}', 'get'],
      ['/things/{thingName}', 'delete'],
      ['/things', 'get'],
      ['/thing-groups/{thingGroupName}', 'post'],
      ['/thing-groups/{thingGroupName}', 'get'],
      ['/thing-groups/{thingGroupName}', 'delete'],
      ['/thing-groups', 'get'],
      ['/thing-groups/addThingToThingGroup', 'put'],
      ['/thing-groups/removeThingFromThingGroup', 'put'],
      ['/thing-groups/{thingGroupName}/things', 'get'],
      ['/jobs/{jobId}', 'put'],
      ['/jobs/{jobId}', 'get'],
      ['/jobs/{jobId}', 'patch'],
      ['/jobs/{jobId}', 'delete'],
      ['/jobs/{jobId}/cancel', 'put'],
      ['/jobs/{jobId}/job-document', 'get'],
      ['/jobs/{jobId}/targets', 'post'],
      ['/jobs', 'get'],
      ['/jobs/{jobId}/things', 'get'],
      ['/things/{thingName}/jobs', 'get'],
      ['/things/{thingName}/jobs/{jobId}', 'get'],
      ['/things/{thingName}/jobs/{jobId}/cancel', 'put'],
      ['/things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber}', 'delete'],
      ['/job-templates/{jobTemplateId}', 'put'],
      ['/job-templates/{jobTemplateId}', 'get'],
      ['/job-templates/{jobTemplateId}', 'delete'],
      ['/job-templates', 'get'],
      ['/things/{thingName}/credentials', 'post'],
      ['/things/{thingName}/credentials/rotate', 'post'],
      ['/events', 'get'],
    ];
    for (const [path, method] of expected) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(op?.summary).toEqual(expect.any(String));
    }
    expect(doc.paths['/jobs/{jobId}']?.put?.requestBody).toBeDefined();
  });

  it('gives every operation a 2xx response schema and its error responses from the catalog', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(50);
    expect(ops.map(([path, method]) => `${method} ${path}`)).toContain('post /operator-keys');
    for (const [path, method, op] of ops) {
      const where = `${method.toUpperCase()} ${path}`;
      const ok = Object.entries(op.responses).filter(([status]) => /^2\d\d$/.test(status));
      expect(ok.length, `${where} has a 2xx response`).toBeGreaterThan(0);
      for (const [status, res] of ok) {
        expect(res.description, `${where} ${status}`).not.toBe('Default Response');
        const media = Object.entries(res.content ?? {});
        expect(media.length, `${where} ${status} has content`).toBeGreaterThan(0);
        for (const [type, { schema }] of media) {
          expect(schema, `${where} ${status} ${type}`).toBeDefined();
          expect(closedEmptyObjects(schema ?? {}, `${where} ${status}`)).toEqual([]);
        }
      }
      for (const status of ['400', '401', '403', '429', '500']) {
        const err = op.responses[status];
        expect(err?.description, `${where} ${status}`).toMatch(/^x-amzn-ErrorType: /);
        expect(err?.headers?.['x-amzn-ErrorType'], `${where} ${status}`).toBeDefined();
      }
    }
    const createJob = doc.paths['/jobs/{jobId}']?.put;
    expect(createJob?.responses['409']?.description).toContain('ResourceAlreadyExistsException');
    expect(createJob?.responses['404']).toBeDefined();
    const describeJob = doc.paths['/jobs/{jobId}']?.get?.responses['200']?.content?.['application/json'];
    expect(describeJob?.schema?.properties?.job).toMatchObject({
      properties: { jobProcessDetails: expect.any(Object) },
    });
  });

  it('names its server relative to the page and its license, as redocly lint requires', async () => {
    // Without servers, redocly's recommended rules fail the document (no-empty-servers).
    expect(doc.servers).toEqual([{ url: '/' }]);
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      license: string;
    };
    expect(doc.info.license).toEqual({ name: pkg.license, identifier: pkg.license });
  });

  it('gives every operation a unique operationId, its AWS operation name where there is one', () => {
    const ids = operations().map(([path, method, op]) => [`${method} ${path}`, op.operationId] as const);
    expect(ids.filter(([, id]) => typeof id !== 'string' || !/^[A-Z][A-Za-z]+$/.test(id))).toEqual([]);
    expect(new Set(ids.map(([, id]) => id)).size).toBe(ids.length);
    expect(Object.fromEntries(ids)).toMatchObject({
      'put /jobs/{jobId}': 'CreateJob',
      'get /things/{thingName}/jobs/{jobId}': 'DescribeJobExecution',
      'get /job-templates/{jobTemplateId}/export': 'ExportJobTemplate',
      'post /operator-keys': 'CreateOperatorKey',
    });
  });

  it('declares bearer and SigV4 security schemes and requires one of them', () => {
    expect(doc.components?.securitySchemes).toMatchObject({
      bearer: { type: 'http', scheme: 'bearer' },
      sigv4: { type: 'apiKey', in: 'header', name: 'Authorization' },
    });
    expect(doc.security).toEqual([{ bearer: [] }, { sigv4: [] }]);
  });
});

describe.each(BACKENDS)('"Try it out" with an operator key on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let admin: CreatedOperatorKey | undefined;
  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db, auth: { onAdminKeyCreated: (k) => (admin = k) } });
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  it('serves the UI without a key and answers the bearer scheme it documents', async () => {
    const json = await fetch(`${app.addresses.http}/docs/json`);
    expect(json.status).toBe(200);
    expect(((await json.json()) as Document).openapi).toBe('3.1.0');
    const ui = await fetch(`${app.addresses.http}/docs/static/index.html`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
    const denied = await fetch(`${app.addresses.http}/jobs`);
    expect(denied.status).toBe(401);
    const body = (await denied.json()) as { message: string; requestId: string };
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(denied.headers.get('x-amzn-requestid')).toBe(body.requestId);
    const allowed = await fetch(`${app.addresses.http}/jobs`, {
      headers: { authorization: `Bearer ${admin?.token}` },
    });
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toEqual({ jobs: [] });
    expect(allowed.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
