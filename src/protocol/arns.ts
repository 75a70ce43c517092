import { isValidJobId, isValidThingName } from './limits.js';

export interface ArnContext {
  region: string;
  accountId: string;
}

export type ResourceType = 'thing' | 'thinggroup' | 'job' | 'jobtemplate';

export function buildArn(ctx: ArnContext, type: ResourceType, name: string): string {
  return `arn:aws:iot:${ctx.region}:${ctx.accountId}:${type}/${name}`;
}

export type Target = { type: 'thing' | 'thinggroup'; name: string };

const ARN_RE = /^arn:aws:iot:([a-z0-9-]*):(\d*):(thing|thinggroup)\/(.+)$/;
const SHORT_RE = /^(thing|thinggroup)\/(.+)$/;

/**
 * [protocol §5] Targets are thing or thing-group ARNs; the short forms `thing/{name}` and `thinggroup/{name}` are
 * accepted too. The region and account of an ARN must be ours, so a target copied from another deployment is
 * caught instead of silently matching a local name.
 */
export function parseTarget(value: string, ctx: ArnContext): Target | { error: string } {
  let type: string | undefined;
  let name: string | undefined;
  const arn = ARN_RE.exec(value);
  if (arn) {
    if (arn[1] !== ctx.region || arn[2] !== ctx.accountId) {
      return { error: `target ${value} is not in region ${ctx.region} and account ${ctx.accountId}` };
    }
    type = arn[3];
    name = arn[4];
  } else {
    const short = SHORT_RE.exec(value);
    if (!short) {
      return {
        error: `target ${value} is neither a thing or thing group ARN nor thing/{name} or thinggroup/{name}`,
      };
    }
    type = short[1];
    name = short[2];
  }
  if (name === undefined || !isValidThingName(name)) {
    return { error: `target ${value} has an invalid name` };
  }
  return { type: type === 'thing' ? 'thing' : 'thinggroup', name };
}

const TEMPLATE_ARN_RE = /^arn:aws:iot:([a-z0-9-]*):(\d*):jobtemplate\/([a-zA-Z0-9_-]{1,64})$/;

export function parseJobTemplateArn(
  value: string,
  ctx: ArnContext,
): { jobTemplateId: string } | { error: string } {
  const m = TEMPLATE_ARN_RE.exec(value);
  if (m?.[3] && m[1] === ctx.region && m[2] === ctx.accountId) return { jobTemplateId: m[3] };
  if (/^[a-zA-Z0-9_-]{1,64}$/.test(value)) return { jobTemplateId: value };
  return {
    error: `jobTemplateArn ${value} is not a job template ARN of region ${ctx.region}, account ${ctx.accountId}`,
  };
}

export function jobArn(ctx: ArnContext, jobId: string): string {
  if (!isValidJobId(jobId)) throw new Error(`invalid jobId ${jobId}`);
  return buildArn(ctx, 'job', jobId);
}
