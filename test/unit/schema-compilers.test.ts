import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { compiledOnce, schemaCompilers } from '../../src/http/schema-compilers.js';

describe('route schemas compiled once per process', () => {
  it('gives one validator for equal schemas (new objects) and another for a different one', () => {
    const compile = compiledOnce(new Ajv());
    const a = compile({ type: 'object', properties: { n: { type: 'integer' } } });
    expect(compile({ type: 'object', properties: { n: { type: 'integer' } } })).toBe(a);
    const b = compile({ type: 'object', properties: { n: { type: 'string' } } });
    expect(b).not.toBe(a);
    expect([a({ n: 1 }), b({ n: 1 })]).toEqual([true, false]);
  });

  it("keeps fastify's compilers apart by their options, and serializes as fast-json-stringify does", () => {
    const route = (schema: object) => ({ schema, method: 'GET', url: '/x', httpStatus: '200' });
    const schema = () => ({ type: 'object', properties: { a: { type: 'string' } } });
    const serialize = schemaCompilers.buildSerializer({}, {});
    expect(serialize(route(schema()))).toBe(serialize(route(schema())));
    expect(serialize(route(schema()))({ a: 'x', b: 1 })).toBe('{"a":"x"}');
    const coercing = schemaCompilers.buildValidator({}, { customOptions: { coerceTypes: true } });
    const strict = schemaCompilers.buildValidator({}, { customOptions: { coerceTypes: false } });
    const int = { type: 'object', properties: { n: { type: 'integer' } } };
    const validate = (c: typeof strict) =>
      c({ schema: { ...int }, method: 'GET', url: '/x', httpPart: 'querystring' }) as (d: unknown) => boolean;
    expect([validate(coercing)({ n: '1' }), validate(strict)({ n: '1' })]).toEqual([true, false]);
  });
});
