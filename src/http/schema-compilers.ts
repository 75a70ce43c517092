import type { Ajv, AnySchema, ValidateFunction } from 'ajv';
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler';
import { SerializerSelector, type SerializerFactory } from '@fastify/fast-json-stringify-compiler';

/**
 * Every app compiles its routes' validators and response serializers when it is built, most of its start-up
 * CPU, and another app of the same process (a test file's next server) builds the same schemas again as new
 * objects, which Ajv's cache (by object) misses. A schema is JSON data, so its text is the key of what was
 * compiled from it: each distinct schema is compiled once per process, and one function serves every route
 * whose schema is the same (the error bodies of every route).
 */
function compileOnce<A, F>(key: (arg: A) => string, compile: (arg: A) => F): (arg: A) => F {
  const made = new Map<string, F>();
  return (arg) => {
    const k = key(arg);
    let fn = made.get(k);
    if (fn === undefined) made.set(k, (fn = compile(arg)));
    return fn;
  };
}

/** Ajv's compile, once per distinct schema. */
export function compiledOnce(ajv: Ajv): (schema: AnySchema) => ValidateFunction {
  return compileOnce(JSON.stringify, (schema: AnySchema) => ajv.compile(schema));
}

type Route = { schema?: unknown };
type Factory<C> = (externalSchemas: unknown, options: unknown) => (route: Route) => C;

/** One compiler per shared schemas and options, compiling once per distinct route schema. */
function factoryOnce<C>(factory: Factory<C>): Factory<C> {
  const compilers = compileOnce(
    ([externalSchemas, options]: [unknown, unknown]) => JSON.stringify([externalSchemas, options]),
    ([externalSchemas, options]: [unknown, unknown]) =>
      compileOnce((route: Route) => JSON.stringify(route.schema), factory(externalSchemas, options)),
  );
  return (externalSchemas, options) => compilers([externalSchemas, options]);
}

/** Fastify's own compilers (Ajv, fast-json-stringify) for schemaController.compilersFactory, compiling once. */
export const schemaCompilers = {
  buildValidator: factoryOnce(AjvCompiler() as Factory<unknown>) as ValidatorFactory,
  buildSerializer: factoryOnce(SerializerSelector() as Factory<unknown>) as SerializerFactory,
};
