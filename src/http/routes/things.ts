import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import { attributes, listQuery, thingName } from '../schemas/common.js';
import { createThing, deleteThing, describeThing, listThings } from '../../service/things.js';
import { RESPONSES } from '../schemas/responses.js';

interface ThingParams {
  thingName: string;
}

/** Things: CreateThing, DescribeThing, ListThings, DeleteThing (AWS IoT paths and shapes). */
export function thingRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.post<{
      Params: ThingParams;
      Body: { thingTypeName?: string; attributePayload?: { attributes?: Record<string, string> } };
    }>(
      '/things/:thingName',
      {
        schema: {
          response: { 200: RESPONSES.createThing },
          summary: 'CreateThing',
          tags: ['things'],
          params: { type: 'object', properties: { thingName }, required: ['thingName'] },
          body: {
            type: 'object',
            properties: {
              thingTypeName: { type: 'string', pattern: '^[a-zA-Z0-9:_-]{1,128}$' },
              attributePayload: { type: 'object', properties: { attributes, merge: { type: 'boolean' } } },
              billingGroupName: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
      async (request) => {
        const body = request.body;
        return createThing(deps, {
          thingName: request.params.thingName,
          ...(body.thingTypeName !== undefined ? { thingTypeName: body.thingTypeName } : {}),
          ...(body.attributePayload?.attributes !== undefined
            ? { attributes: body.attributePayload.attributes }
            : {}),
        });
      },
    );

    app.get<{ Params: ThingParams }>(
      '/things/:thingName',
      {
        schema: {
          response: { 200: RESPONSES.describeThing },
          summary: 'DescribeThing',
          tags: ['things'],
          params: { type: 'object', properties: { thingName }, required: ['thingName'] },
        },
      },
      async (request) => describeThing(deps, request.params.thingName),
    );

    app.get<{
      Querystring: {
        maxResults?: number;
        nextToken?: string;
        attributeName?: string;
        attributeValue?: string;
        thingTypeName?: string;
      };
    }>(
      '/things',
      {
        schema: {
          response: { 200: RESPONSES.listThings },
          summary: 'ListThings',
          tags: ['things'],
          querystring: {
            type: 'object',
            properties: {
              ...listQuery,
              attributeName: { type: 'string', pattern: '^[a-zA-Z0-9_.,@/:#-]{1,128}$' },
              attributeValue: { type: 'string', maxLength: 800 },
              thingTypeName: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
      async (request) => listThings(deps, request.query),
    );

    app.delete<{ Params: ThingParams; Querystring: { expectedVersion?: number } }>(
      '/things/:thingName',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteThing: pending executions become REMOVED',
          tags: ['things'],
          params: { type: 'object', properties: { thingName }, required: ['thingName'] },
          querystring: { type: 'object', properties: { expectedVersion: { type: 'integer', minimum: 0 } } },
        },
      },
      async (request) => {
        await deleteThing(deps, {
          thingName: request.params.thingName,
          ...(request.query.expectedVersion !== undefined
            ? { expectedVersion: request.query.expectedVersion }
            : {}),
        });
        return {};
      },
    );
  };
}
