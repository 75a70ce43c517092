import { path } from './api-client.js';
import { table, time } from './format.js';
import { UsageError, type CommandSpec } from './types.js';

interface Thing {
  thingName: string;
  thingArn?: string;
  thingId?: string;
  attributes?: Record<string, string>;
  version?: number;
}

interface Credential {
  thingName?: string;
  credentialId: string;
  secret?: string;
  status?: string;
  createdAt?: number;
  revokedAt?: number;
  revokedCredentialIds?: string[];
}

/** `k=v` pairs (repeatable flag) into a map; a pair without `=` is a usage error. */
export function pairs(values: unknown, flag: string): Record<string, string> | undefined {
  if (!Array.isArray(values) || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values as string[]) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} takes key=value, got ${v}`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function attributes(a: Record<string, string> | undefined): string {
  return Object.entries(a ?? {})
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export const thingsCommands: Record<string, CommandSpec> = {
  create: {
    usage: '<thingName> [--attribute key=value]...',
    summary: 'register a thing (CreateThing)',
    positionals: { min: 1, max: 1 },
    options: { attribute: { type: 'string', multiple: true } },
    async run(ctx, [name], values) {
      const attrs = pairs(values.attribute, '--attribute');
      const body = attrs === undefined ? {} : { attributePayload: { attributes: attrs } };
      const res = await ctx.client.request<Thing>('POST', path`/things/${name as string}`, { body });
      if (ctx.json) ctx.printJson(res);
      else ctx.print(`created thing ${res.thingName} (${res.thingArn ?? ''})`);
      return 0;
    },
  },
  describe: {
    usage: '<thingName>',
    summary: 'show a thing (DescribeThing)',
    positionals: { min: 1, max: 1 },
    async run(ctx, [name]) {
      const res = await ctx.client.request<Thing>('GET', path`/things/${name as string}`);
      if (ctx.json) ctx.printJson(res);
      else {
        ctx.print(
          table(
            ['FIELD', 'VALUE'],
            [
              ['thingName', res.thingName],
              ['thingArn', res.thingArn],
              ['thingId', res.thingId],
              ['version', res.version],
              ['attributes', attributes(res.attributes)],
            ],
          ),
        );
      }
      return 0;
    },
  },
  list: {
    usage: '[--max-results N]',
    summary: 'list things (ListThings, every page)',
    positionals: { min: 0, max: 0 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, _args, values) {
      const things = await ctx.client.list<Thing>('/things', 'things', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ things });
      else
        ctx.print(
          table(
            ['THING', 'VERSION', 'ATTRIBUTES'],
            things.map((t) => [t.thingName, t.version, attributes(t.attributes)]),
          ),
        );
      return 0;
    },
  },
  credentials: {
    usage: '(create | rotate | list) <thingName> | revoke <thingName> [credentialId]',
    summary:
      'device secrets (MQTT/HTTPS password of a thing): create one, rotate (create one and revoke the others), ' +
      'list them, revoke one or all; a new secret is printed once',
    positionals: { min: 2, max: 3 },
    async run(ctx, [action, name, credentialId]) {
      const thing = name as string;
      if (action === 'create' || action === 'rotate') {
        if (credentialId !== undefined)
          throw new UsageError(`things credentials ${action} takes only a thing name`);
        const res = await ctx.client.request<Credential>(
          'POST',
          action === 'create'
            ? path`/things/${thing}/credentials`
            : path`/things/${thing}/credentials/rotate`,
        );
        if (ctx.json) ctx.printJson(res);
        else {
          ctx.print(`secret ${res.credentialId} for ${res.thingName} (shown only now):\n${res.secret}`);
          if ((res.revokedCredentialIds ?? []).length > 0)
            ctx.print(`revoked ${(res.revokedCredentialIds ?? []).join(', ')}`);
        }
        return 0;
      }
      if (action === 'list') {
        if (credentialId !== undefined)
          throw new UsageError('things credentials list takes only a thing name');
        const res = await ctx.client.request<{ credentials: Credential[] }>(
          'GET',
          path`/things/${thing}/credentials`,
        );
        if (ctx.json) ctx.printJson(res);
        else
          ctx.print(
            table(
              ['CREDENTIAL', 'STATUS', 'CREATED', 'REVOKED'],
              res.credentials.map((c) => [c.credentialId, c.status, time(c.createdAt), time(c.revokedAt)]),
            ),
          );
        return 0;
      }
      if (action === 'revoke') {
        const res = await ctx.client.request<{ revokedCredentialIds: string[] }>(
          'DELETE',
          credentialId === undefined
            ? path`/things/${thing}/credentials`
            : path`/things/${thing}/credentials/${credentialId}`,
        );
        if (ctx.json) ctx.printJson(res);
        else
          ctx.print(
            res.revokedCredentialIds.length === 0
              ? `no active secret of ${thing} to revoke`
              : `revoked ${res.revokedCredentialIds.join(', ')}; sessions they opened are closed`,
          );
        return 0;
      }
      throw new UsageError(`things credentials takes create, rotate, list or revoke, not ${action}`);
    },
  },
  delete: {
    usage: '<thingName>',
    summary: 'delete a thing (DeleteThing); its pending executions become REMOVED',
    positionals: { min: 1, max: 1 },
    async run(ctx, [name]) {
      await ctx.client.request('DELETE', path`/things/${name as string}`);
      if (ctx.json) ctx.printJson({ thingName: name, deleted: true });
      else ctx.print(`deleted thing ${name}`);
      return 0;
    },
  },
};

export function maxResults(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,6}$/.test(value)) {
    throw new UsageError('--max-results takes a positive integer');
  }
  return Number(value);
}
