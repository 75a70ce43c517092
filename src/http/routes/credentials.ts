import type { FastifyPluginAsync } from 'fastify';
import { THING_NAME_PATTERN } from '../../protocol/limits.js';
import {
  createThingCredential,
  listThingCredentials,
  revokeThingCredential,
} from '../../service/credentials.js';
import type { ServiceDeps } from '../../service/deps.js';
import { RESPONSES } from '../schemas/responses.js';

const epoch = (d: Date | null) => (d === null ? undefined : Math.floor(d.getTime() / 1000));
const thingParams = {
  type: 'object',
  required: ['thingName'],
  properties: { thingName: { type: 'string', pattern: THING_NAME_PATTERN } },
} as const;
const credentialParams = {
  type: 'object',
  required: ['thingName', 'credentialId'],
  properties: {
    thingName: { type: 'string', pattern: THING_NAME_PATTERN },
    credentialId: { type: 'string', format: 'uuid' },
  },
} as const;

/**
 * [protocol §5] Device secrets for username/password MQTT login, HTTP Basic and SigV4 on the device data plane. The
 * secret is in the create and rotate responses only; the store keeps its scrypt hash.
 */
export function credentialRoutes(
  deps: ServiceDeps,
  onRevoked: (thingName: string) => void = () => {},
  masterKey?: Buffer,
): FastifyPluginAsync {
  return async (app) => {
    const revoked = (thingName: string, ids: string[]) => {
      if (ids.length > 0) onRevoked(thingName);
      return ids;
    };
    const created = async (thingName: string, rotate: boolean) => {
      const c = await createThingCredential(deps, thingName, { rotate, masterKey });
      revoked(thingName, c.revokedCredentialIds);
      return {
        thingName: c.thingName,
        credentialId: c.credentialId,
        secret: c.secret,
        createdAt: epoch(c.createdAt),
        revokedCredentialIds: c.revokedCredentialIds,
      };
    };
    app.post<{ Params: { thingName: string } }>(
      '/things/:thingName/credentials',
      {
        schema: {
          params: thingParams,
          response: { 200: RESPONSES.createdCredential },
          tags: ['device credentials'],
          operationId: 'CreateThingCredential',
          summary: 'Create a device secret (returned once)',
        },
      },
      async (request) => created(request.params.thingName, false),
    );
    app.post<{ Params: { thingName: string } }>(
      '/things/:thingName/credentials/rotate',
      {
        schema: {
          params: thingParams,
          response: { 200: RESPONSES.createdCredential },
          tags: ['device credentials'],
          operationId: 'RotateThingCredentials',
          summary: 'Create a device secret and revoke every other one',
        },
      },
      async (request) => created(request.params.thingName, true),
    );
    app.get<{ Params: { thingName: string } }>(
      '/things/:thingName/credentials',
      {
        schema: {
          params: thingParams,
          response: { 200: RESPONSES.listCredentials },
          tags: ['device credentials'],
          operationId: 'ListThingCredentials',
          summary: 'List the device secrets of a thing (never the secrets)',
        },
      },
      async (request) => ({
        credentials: (await listThingCredentials(deps, request.params.thingName)).map((c) => ({
          credentialId: c.credentialId,
          status: c.status,
          createdAt: epoch(c.createdAt),
          revokedAt: epoch(c.revokedAt),
        })),
      }),
    );
    app.delete<{ Params: { thingName: string; credentialId: string } }>(
      '/things/:thingName/credentials/:credentialId',
      {
        schema: {
          params: credentialParams,
          response: { 200: RESPONSES.revokedCredentials },
          tags: ['device credentials'],
          operationId: 'RevokeThingCredential',
          summary: 'Revoke one device secret',
        },
      },
      async (request) => ({
        revokedCredentialIds: revoked(
          request.params.thingName,
          await revokeThingCredential(deps, request.params.thingName, request.params.credentialId),
        ),
      }),
    );
    app.delete<{ Params: { thingName: string } }>(
      '/things/:thingName/credentials',
      {
        schema: {
          params: thingParams,
          response: { 200: RESPONSES.revokedCredentials },
          tags: ['device credentials'],
          operationId: 'RevokeThingCredentials',
          summary: 'Revoke every device secret of a thing',
        },
      },
      async (request) => ({
        revokedCredentialIds: revoked(
          request.params.thingName,
          await revokeThingCredential(deps, request.params.thingName, undefined),
        ),
      }),
    );
  };
}
