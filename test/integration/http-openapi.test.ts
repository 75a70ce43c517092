import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';

describe.each(BACKENDS)('the OpenAPI document on %s', (backend) => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await createControlPlane(backend);
  });
  afterAll(() => cp.close());

  it('shows every control-plane route with its request schema', async () => {
    const res = await cp.call('GET', '/docs/json');
    expect(res.status).toBe(200);
    const paths = res.body.paths as Record<
      string,
      Record<string, { summary?: string; requestBody?: unknown }>
    >;
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
    ];
    for (const [path, method] of expected) {
      expect(paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(paths[path]?.[method]?.summary).toEqual(expect.any(String));
    }
    expect(paths['/jobs/{jobId}']?.put?.requestBody).toBeDefined();
  });
});
