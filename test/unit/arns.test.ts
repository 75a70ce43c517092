import { describe, expect, it } from 'vitest';
import { buildArn, parseJobTemplateArn, parseTarget } from '../../src/protocol/arns.js';

const ctx = { region: 'eu-west-1', accountId: '123456789012' };

describe('target parsing', () => {
  it('accepts thing and thing group ARNs of this region and account', () => {
    expect(parseTarget('arn:aws:iot:eu-west-1:123456789012:thing/dev-1', ctx)).toEqual({
      type: 'thing',
      name: 'dev-1',
    });
    expect(parseTarget('arn:aws:iot:eu-west-1:123456789012:thinggroup/g:1', ctx)).toEqual({
      type: 'thinggroup',
      name: 'g:1',
    });
  });

  it('accepts the short forms thing/{name} and thinggroup/{name}', () => {
    expect(parseTarget('thing/dev-1', ctx)).toEqual({ type: 'thing', name: 'dev-1' });
    expect(parseTarget('thinggroup/fleet', ctx)).toEqual({ type: 'thinggroup', name: 'fleet' });
  });

  it('refuses an ARN of another account or region, naming both', () => {
    const r = parseTarget('arn:aws:iot:us-east-1:123456789012:thing/dev-1', ctx);
    expect(r).toEqual({ error: expect.stringContaining('eu-west-1') });
    expect(parseTarget('arn:aws:iot:eu-west-1:999999999999:thing/dev-1', ctx)).toHaveProperty('error');
  });

  it.each(['dev-1', 'thing/', 'thing/bad name', 'job/j1', 'arn:aws:iot:eu-west-1:123456789012:job/j1', ''])(
    'refuses %j',
    (value) => {
      expect(parseTarget(value, ctx)).toHaveProperty('error');
    },
  );

  it('round-trips what buildArn makes', () => {
    expect(parseTarget(buildArn(ctx, 'thing', 'x'), ctx)).toEqual({ type: 'thing', name: 'x' });
  });
});

describe('job template ARN parsing', () => {
  it('accepts a template ARN or a bare template id', () => {
    expect(parseJobTemplateArn('arn:aws:iot:eu-west-1:123456789012:jobtemplate/t-1', ctx)).toEqual({
      jobTemplateId: 't-1',
    });
    expect(parseJobTemplateArn('t-1', ctx)).toEqual({ jobTemplateId: 't-1' });
    expect(parseJobTemplateArn('arn:aws:iot:us-east-1:123456789012:jobtemplate/t-1', ctx)).toHaveProperty(
      'error',
    );
  });
});
