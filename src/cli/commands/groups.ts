import { path } from './api-client.js';
import { table } from './format.js';
import { maxResults } from './things.js';
import type { CommandSpec } from './types.js';

interface GroupSummary {
  groupName: string;
  groupArn?: string;
}

export const groupsCommands: Record<string, CommandSpec> = {
  create: {
    usage: '<thingGroupName> [--description TEXT]',
    summary: 'create a static thing group (CreateThingGroup)',
    positionals: { min: 1, max: 1 },
    options: { description: { type: 'string' } },
    async run(ctx, [name], values) {
      const body =
        typeof values.description === 'string'
          ? { thingGroupProperties: { thingGroupDescription: values.description } }
          : {};
      const res = await ctx.client.request<{ thingGroupName: string; thingGroupArn?: string }>(
        'POST',
        path`/thing-groups/${name as string}`,
        { body },
      );
      if (ctx.json) ctx.printJson(res);
      else ctx.print(`created thing group ${res.thingGroupName} (${res.thingGroupArn ?? ''})`);
      return 0;
    },
  },
  add: {
    usage: '<thingGroupName> <thingName>...',
    summary: 'add things to a group (AddThingToThingGroup, once per thing)',
    positionals: { min: 2 },
    async run(ctx, [group, ...things]) {
      for (const thingName of things) {
        await ctx.client.request('PUT', '/thing-groups/addThingToThingGroup', {
          body: { thingGroupName: group, thingName },
        });
        if (!ctx.json) ctx.print(`added ${thingName} to ${group}`);
      }
      if (ctx.json) ctx.printJson({ thingGroupName: group, added: things });
      return 0;
    },
  },
  remove: {
    usage: '<thingGroupName> <thingName>...',
    summary: 'remove things from a group (RemoveThingFromThingGroup, once per thing)',
    positionals: { min: 2 },
    async run(ctx, [group, ...things]) {
      for (const thingName of things) {
        await ctx.client.request('PUT', '/thing-groups/removeThingFromThingGroup', {
          body: { thingGroupName: group, thingName },
        });
        if (!ctx.json) ctx.print(`removed ${thingName} from ${group}`);
      }
      if (ctx.json) ctx.printJson({ thingGroupName: group, removed: things });
      return 0;
    },
  },
  list: {
    usage: '[--max-results N]',
    summary: 'list thing groups (ListThingGroups, every page)',
    positionals: { min: 0, max: 0 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, _args, values) {
      const groups = await ctx.client.list<GroupSummary>('/thing-groups', 'thingGroups', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ thingGroups: groups });
      else
        ctx.print(
          table(
            ['GROUP', 'ARN'],
            groups.map((g) => [g.groupName, g.groupArn]),
          ),
        );
      return 0;
    },
  },
  members: {
    usage: '<thingGroupName> [--max-results N]',
    summary: 'list the things in a group (ListThingsInThingGroup, every page)',
    positionals: { min: 1, max: 1 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, [group], values) {
      const things = await ctx.client.list<string>(path`/thing-groups/${group as string}/things`, 'things', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ things });
      else ctx.print(things.length === 0 ? `${group} has no things` : things.join('\n'));
      return 0;
    },
  },
};
