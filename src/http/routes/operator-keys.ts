import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { FleetJobsError } from '../../protocol/errors.js';
import { LIMITS } from '../../protocol/limits.js';
import type { ServiceDeps } from '../../service/deps.js';
import {
  OPERATOR_ROLES,
  createOperatorKey,
  listOperatorKeys,
  revokeOperatorKeyById,
  type OperatorKeyView,
} from '../../service/operator-keys.js';
import { DEFAULT_TENANT_ID, TENANT_ID_PATTERN, requireTenant } from '../../service/tenants.js';
import type { OperatorRole } from '../../store/operator-keys.js';
import { RESPONSES } from '../schemas/responses.js';
import { asTenant } from '../tenant-scope.js';

const epoch = (d: Date | null) => (d === null ? undefined : Math.floor(d.getTime() / 1000));
const viewBody = (k: OperatorKeyView) => ({
  accessKeyId: k.accessKeyId,
  role: k.role,
  tenantId: k.tenantId,
  description: k.description ?? undefined,
  status: k.status,
  createdAt: epoch(k.createdAt),
  revokedAt: epoch(k.revokedAt),
});

const tenantId = { type: 'string', pattern: TENANT_ID_PATTERN.source };

/**
 * [protocol §5] Operator API keys (admin role only; see roleAllows in ../auth.ts), of the admin's own tenant. An
 * admin of the default tenant may name another tenant (tenantId): the operation then runs as that tenant, so
 * row-level security still keeps it to that tenant's keys.
 */
export function operatorKeyRoutes(
  deps: ServiceDeps,
  system: ServiceDeps,
  masterKey: Buffer,
): FastifyPluginAsync {
  const asKeysTenant = async <T>(
    request: FastifyRequest,
    asked: string | undefined,
    fn: (tenant: string) => Promise<T>,
  ): Promise<T> => {
    const own = request.principal?.tenantId ?? DEFAULT_TENANT_ID;
    if (asked === undefined || asked === own) return fn(own);
    if (own !== DEFAULT_TENANT_ID) {
      throw new FleetJobsError(
        'Forbidden',
        `a key of tenant ${own} may manage the keys of its own tenant only`,
      );
    }
    await requireTenant(system, asked);
    return asTenant(asked, () => fn(asked));
  };
  return async (app) => {
    app.get<{ Querystring: { maxResults?: number; nextToken?: string; tenantId?: string } }>(
      '/operator-keys',
      {
        schema: {
          response: { 200: RESPONSES.listOperatorKeys },
          tags: ['operator keys'],
          operationId: 'ListOperatorKeys',
          summary: "List operator keys (never their secrets) of the caller's tenant, or of tenantId",
          querystring: {
            type: 'object',
            properties: {
              maxResults: {
                type: 'integer',
                minimum: LIMITS.MIN_LIST_RESULTS,
                maximum: LIMITS.MAX_LIST_RESULTS,
              },
              nextToken: { type: 'string', maxLength: 64 },
              tenantId,
            },
          },
        },
      },
      async (request) => {
        const { tenantId: asked, ...page } = request.query;
        const keys = await asKeysTenant(request, asked, () => listOperatorKeys(deps, page));
        return { keys: keys.keys.map(viewBody), nextToken: keys.nextToken };
      },
    );
    app.post<{ Body: { role: OperatorRole; description?: string; tenantId?: string } }>(
      '/operator-keys',
      {
        schema: {
          response: { 200: RESPONSES.createdOperatorKey },
          tags: ['operator keys'],
          operationId: 'CreateOperatorKey',
          summary:
            "Create an operator key of the caller's tenant, or of tenantId; the secret and bearer token are returned once",
          body: {
            type: 'object',
            required: ['role'],
            additionalProperties: false,
            properties: {
              role: { type: 'string', enum: [...OPERATOR_ROLES] },
              description: { type: 'string', maxLength: LIMITS.MAX_DESCRIPTION_CHARS },
              tenantId,
            },
          },
        },
      },
      async (request) => {
        const { tenantId: asked, ...input } = request.body;
        const k = await asKeysTenant(request, asked, (tenant) =>
          createOperatorKey(deps, masterKey, { ...input, tenantId: tenant }),
        );
        return {
          accessKeyId: k.accessKeyId,
          secretAccessKey: k.secretAccessKey,
          token: k.token,
          role: k.role,
          tenantId: k.tenantId,
          description: k.description ?? undefined,
          createdAt: epoch(k.createdAt),
        };
      },
    );
    app.delete<{ Params: { accessKeyId: string }; Querystring: { tenantId?: string } }>(
      '/operator-keys/:accessKeyId',
      {
        schema: {
          response: { 200: RESPONSES.operatorKey },
          tags: ['operator keys'],
          operationId: 'RevokeOperatorKey',
          summary:
            "Revoke an operator key of the caller's tenant, or of tenantId (a tenant's last active admin key cannot be revoked)",
          params: {
            type: 'object',
            required: ['accessKeyId'],
            properties: { accessKeyId: { type: 'string', maxLength: 64 } },
          },
          querystring: { type: 'object', properties: { tenantId } },
        },
      },
      async (request) =>
        viewBody(
          await asKeysTenant(request, request.query.tenantId, () =>
            revokeOperatorKeyById(deps, request.params.accessKeyId),
          ),
        ),
    );
  };
}
