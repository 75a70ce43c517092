import type { FastifyPluginAsync } from 'fastify';
import type { HttpDeps } from '../app.js';
import { arn, attributes, description, listQuery, thingGroupName, thingName } from '../schemas/common.js';
import {
  addThingToThingGroup,
  createThingGroup,
  deleteThingGroup,
  describeThingGroup,
  listThingGroups,
  listThingsInThingGroup,
  removeThingFromThingGroup,
  type MembershipInput,
} from '../../service/thing-groups.js';
import { RESPONSES } from '../schemas/responses.js';

interface GroupParams {
  thingGroupName: string;
}

const groupParams = { type: 'object', properties: { thingGroupName }, required: ['thingGroupName'] } as const;

const membershipBody = {
  type: 'object',
  properties: {
    thingGroupName,
    thingGroupArn: arn,
    thingName,
    thingArn: arn,
    overrideDynamicGroups: { type: 'boolean' },
  },
} as const;

/** Thing groups and membership (AWS IoT paths and shapes); membership changes drive CONTINUOUS jobs. */
export function thingGroupRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.put<{ Body: MembershipInput }>(
      '/thing-groups/addThingToThingGroup',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary:
            'AddThingToThingGroup: IN_PROGRESS CONTINUOUS jobs of the group queue an execution for the thing',
          tags: ['thing groups'],
          body: membershipBody,
        },
      },
      async (request) => {
        await addThingToThingGroup(deps, request.body);
        return {};
      },
    );

    app.put<{ Body: MembershipInput }>(
      '/thing-groups/removeThingFromThingGroup',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary:
            'RemoveThingFromThingGroup: pending executions of CONTINUOUS jobs it no longer reaches: REMOVED',
          tags: ['thing groups'],
          body: membershipBody,
        },
      },
      async (request) => {
        await removeThingFromThingGroup(deps, request.body);
        return {};
      },
    );

    app.post<{
      Params: GroupParams;
      Body: {
        thingGroupProperties?: {
          thingGroupDescription?: string;
          attributePayload?: { attributes?: Record<string, string> };
        };
      };
    }>(
      '/thing-groups/:thingGroupName',
      {
        schema: {
          response: { 200: RESPONSES.createThingGroup },
          summary: 'CreateThingGroup',
          tags: ['thing groups'],
          params: groupParams,
          body: {
            type: 'object',
            properties: {
              parentGroupName: thingGroupName,
              thingGroupProperties: {
                type: 'object',
                properties: {
                  thingGroupDescription: description,
                  attributePayload: {
                    type: 'object',
                    properties: { attributes, merge: { type: 'boolean' } },
                  },
                },
              },
              tags: { type: 'array' },
            },
          },
        },
      },
      async (request) => {
        const props = request.body.thingGroupProperties;
        return createThingGroup(deps, {
          thingGroupName: request.params.thingGroupName,
          description: props?.thingGroupDescription,
          attributes: props?.attributePayload?.attributes,
        });
      },
    );

    app.get<{ Params: GroupParams }>(
      '/thing-groups/:thingGroupName',
      {
        schema: {
          response: { 200: RESPONSES.describeThingGroup },
          summary: 'DescribeThingGroup',
          tags: ['thing groups'],
          params: groupParams,
        },
      },
      async (request) => describeThingGroup(deps, request.params.thingGroupName),
    );

    app.delete<{ Params: GroupParams; Querystring: { expectedVersion?: number } }>(
      '/thing-groups/:thingGroupName',
      {
        schema: {
          response: { 200: RESPONSES.empty },
          summary: 'DeleteThingGroup',
          tags: ['thing groups'],
          params: groupParams,
          querystring: { type: 'object', properties: { expectedVersion: { type: 'integer', minimum: 0 } } },
        },
      },
      async (request) => {
        await deleteThingGroup(deps, {
          thingGroupName: request.params.thingGroupName,
          ...(request.query.expectedVersion !== undefined
            ? { expectedVersion: request.query.expectedVersion }
            : {}),
        });
        return {};
      },
    );

    app.get<{ Querystring: { maxResults?: number; nextToken?: string; namePrefixFilter?: string } }>(
      '/thing-groups',
      {
        schema: {
          response: { 200: RESPONSES.listThingGroups },
          summary: 'ListThingGroups',
          tags: ['thing groups'],
          querystring: {
            type: 'object',
            properties: {
              ...listQuery,
              namePrefixFilter: { type: 'string', maxLength: 128 },
              recursive: { type: 'boolean' },
            },
          },
        },
      },
      async (request) => listThingGroups(deps, request.query),
    );

    app.get<{ Params: GroupParams; Querystring: { maxResults?: number; nextToken?: string } }>(
      '/thing-groups/:thingGroupName/things',
      {
        schema: {
          response: { 200: RESPONSES.listThingsInThingGroup },
          summary: 'ListThingsInThingGroup',
          tags: ['thing groups'],
          params: groupParams,
          querystring: { type: 'object', properties: { ...listQuery, recursive: { type: 'boolean' } } },
        },
      },
      async (request) =>
        listThingsInThingGroup(deps, { thingGroupName: request.params.thingGroupName, ...request.query }),
    );
  };
}
