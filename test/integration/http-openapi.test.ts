import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { startTestServer } from '../helpers/server.js';
import type { FleetJobs } from '../../src/app.js';
import type { CreatedOperatorKey } from '../../src/service/operator-keys.js';

interface Response {
  description?: string;
  content?: Record<string, { schema?: { properties?: Record<string, unknown> } }>;
  headers?: Record<string, unknown>;
}
interface Operation {
  summary?: string;
  requestBody?: unknown;
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, unknown> };
  security?: unknown;
}

/**
 * The operations whose 200 response has a schema (src/http/schemas/responses.ts). Routes added since (dead
 * letters, template versions, schedules) are not in it yet.
 */
const WITH_RESPONSE_SCHEMA = new Set([
  'POST /things/{thingName}',
  'GET /things/{thingName}',
  'DELETE /things/{thingName}',
  'GET /things',
  'POST /thing-groups/{thingGroupName}',
  'GET /thing-groups/{thingGroupName}',
  'DELETE /thing-groups/{thingGroupName}',
  'GET /thing-groups',
  'PUT /thing-groups/addThingToThingGroup',
  'PUT /thing-groups/removeThingFromThingGroup',
  'GET /thing-groups/{thingGroupName}/things',
  'PUT /jobs/{jobId}',
  'GET /jobs/{jobId}',
  'PATCH /jobs/{jobId}',
  'DELETE /jobs/{jobId}',
  'PUT /jobs/{jobId}/cancel',
  'GET /jobs/{jobId}/job-document',
  'POST /jobs/{jobId}/targets',
  'GET /jobs',
  'GET /jobs/{jobId}/things',
  'GET /things/{thingName}/jobs',
  'GET /things/{thingName}/jobs/{jobId}',
  'PUT /things/{thingName}/jobs/{jobId}/cancel',
  'DELETE /things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber}',
  'PUT /job-templates/{jobTemplateId}',
  'GET /job-templates/{jobTemplateId}',
  'DELETE /job-templates/{jobTemplateId}',
  'GET /job-templates',
  'POST /things/{thingName}/credentials',
  'POST /things/{thingName}/credentials/rotate',
  'GET /things/{thingName}/credentials',
  'DELETE /things/{thingName}/credentials/{credentialId}',
  'DELETE /things/{thingName}/credentials',
  'GET /events',
  'GET /endpoint',
]);

describe.each(BACKENDS)('the OpenAPI document on %s', (backend) => {
  let cp: ControlPlane;
  let doc: Document;
  beforeAll(async () => {
    cp = await createControlPlane(backend);
    doc = (await cp.call('GET', '/docs/json')).body as unknown as Document;
  });
  afterAll(() => cp.close());

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

  it('gives every operation a 200 schema and its error responses from the catalog', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(25);
    for (const [path, method, op] of ops) {
      const where = `${method.toUpperCase()} ${path}`;
      if (WITH_RESPONSE_SCHEMA.has(where)) {
        const ok = op.responses['200'];
        expect(ok?.content, where).toBeDefined();
        expect(ok?.description, where).not.toBe('Default Response');
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
