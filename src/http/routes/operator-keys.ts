import type { FastifyPluginAsync } from 'fastify';
import { LIMITS } from '../../protocol/limits.js';
import type { ServiceDeps } from '../../service/deps.js';
import {
  OPERATOR_ROLES,
  createOperatorKey,
  listOperatorKeys,
  revokeOperatorKeyById,
  type OperatorKeyView,
} from '../../service/operator-keys.js';
import type { OperatorRole } from '../../store/operator-keys.js';
import { RESPONSES } from '../schemas/responses.js';

const epoch = (d: Date | null) => (d === null ? undefined : Math.floor(d.getTime() / 1000));
const viewBody = (k: OperatorKeyView) => ({
  accessKeyId: k.accessKeyId,
  role: k.role,
  description: k.description ?? undefined,
  status: k.status,
  createdAt: epoch(k.createdAt),
  revokedAt: epoch(k.revokedAt),
});

/** [protocol §5] Operator API keys (admin role only; see roleAllows in ../auth.ts). */
export function operatorKeyRoutes(deps: ServiceDeps, masterKey: Buffer): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { maxResults?: number; nextToken?: string } }>(
      '/operator-keys',
      {
        schema: {
          response: { 200: RESPONSES.listOperatorKeys },
          tags: ['operator keys'],
          summary: 'List operator keys (never their secrets)',
          querystring: {
            type: 'object',
            properties: {
              maxResults: {
                type: 'integer',
                minimum: LIMITS.MIN_LIST_RESULTS,
                maximum: LIMITS.MAX_LIST_RESULTS,
              },
              nextToken: { type: 'string', maxLength: 64 },
            },
          },
        },
      },
      async (request) => {
        const page = await listOperatorKeys(deps, request.query);
        return { keys: page.keys.map(viewBody), nextToken: page.nextToken };
      },
    );
    app.post<{ Body: { role: OperatorRole; description?: string } }>(
      '/operator-keys',
      {
        schema: {
          response: { 200: RESPONSES.createdOperatorKey },
          tags: ['operator keys'],
          summary: 'Create an operator key; the secret and bearer token are returned once',
          body: {
            type: 'object',
            required: ['role'],
            additionalProperties: false,
            properties: {
              role: { type: 'string', enum: [...OPERATOR_ROLES] },
              description: { type: 'string', maxLength: LIMITS.MAX_DESCRIPTION_CHARS },
            },
          },
        },
      },
      async (request) => {
        const k = await createOperatorKey(deps, masterKey, request.body);
        return {
          accessKeyId: k.accessKeyId,
          secretAccessKey: k.secretAccessKey,
          token: k.token,
          role: k.role,
          description: k.description ?? undefined,
          createdAt: epoch(k.createdAt),
        };
      },
    );
    app.delete<{ Params: { accessKeyId: string } }>(
      '/operator-keys/:accessKeyId',
      {
        schema: {
          response: { 200: RESPONSES.operatorKey },
          tags: ['operator keys'],
          summary: 'Revoke an operator key (the last active admin key cannot be revoked)',
          params: {
            type: 'object',
            required: ['accessKeyId'],
            properties: { accessKeyId: { type: 'string', maxLength: 64 } },
          },
        },
      },
      async (request) => viewBody(await revokeOperatorKeyById(deps, request.params.accessKeyId)),
    );
  };
}
