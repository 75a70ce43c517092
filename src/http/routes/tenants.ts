import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../service/deps.js';
import { describeTenant, listTenants, putTenant, TENANT_ID_PATTERN } from '../../service/tenants.js';
import { description, listQuery } from '../schemas/common.js';
import { RESPONSES } from '../schemas/responses.js';

interface TenantParams {
  tenantId: string;
}
const tenantParams = {
  type: 'object',
  properties: { tenantId: { type: 'string', pattern: TENANT_ID_PATTERN.source } },
  required: ['tenantId'],
} as const;
const tags = ['tenants'];

/**
 * Tenants (fleetjobs extension, docs/tenants.md): PutTenant, DescribeTenant, ListTenants. On the system db, for admin
 * keys of the default tenant only (roleAllows and tenantAllows in ../auth.ts). A tenant's keys are made with
 * POST /operator-keys and its tenantId.
 */
export function tenantRoutes(deps: ServiceDeps): FastifyPluginAsync {
  return async (app) => {
    app.put<{ Params: TenantParams; Body: { description?: string } }>(
      '/tenants/:tenantId',
      {
        schema: {
          response: { 200: RESPONSES.putTenant },
          summary: 'PutTenant',
          tags,
          params: tenantParams,
          body: { type: 'object', additionalProperties: false, properties: { description } },
        },
      },
      async (request) =>
        putTenant(deps, { tenantId: request.params.tenantId, description: request.body?.description }),
    );
    app.get<{ Params: TenantParams }>(
      '/tenants/:tenantId',
      {
        schema: {
          response: { 200: RESPONSES.tenant },
          summary: 'DescribeTenant',
          tags,
          params: tenantParams,
        },
      },
      async (request) => describeTenant(deps, request.params.tenantId),
    );
    app.get<{ Querystring: { maxResults?: number; nextToken?: string } }>(
      '/tenants',
      {
        schema: {
          response: { 200: RESPONSES.listTenants },
          summary: 'ListTenants',
          tags,
          querystring: { type: 'object', properties: listQuery },
        },
      },
      async (request) => listTenants(deps, request.query),
    );
  };
}
