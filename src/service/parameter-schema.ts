import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { FleetJobsError } from '../protocol/errors.js';

/**
 * Job template parameter schemas (fleetjobs extension): a template may carry `documentParametersSchema`, a JSON
 * Schema that CreateJob's `documentParameters` (an object of strings) must satisfy. Every violation is reported,
 * not only the first.
 */
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false, unicodeRegExp: true }));

/** Compiled schemas by their JSON text; templates are few, and a schema is compiled once per process. */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 256;

function compile(schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let fn = compiled.get(key);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, fn);
  }
  return fn;
}

/** A template's documentParametersSchema must be a schema ajv can compile. */
export function checkParametersSchema(schema: unknown): void {
  if (schema === undefined) return;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new FleetJobsError('InvalidRequest', 'documentParametersSchema must be a JSON Schema object');
  }
  try {
    compile(schema);
  } catch (err) {
    throw new FleetJobsError(
      'InvalidRequest',
      `documentParametersSchema is not a valid JSON Schema: ${(err as Error).message}`,
    );
  }
}

function describe(e: ErrorObject): string {
  const at = `documentParameters${e.instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => `.${p}`)
    .join('')}`;
  if (e.keyword === 'additionalProperties') {
    return `${at} must not have property ${String((e.params as { additionalProperty: string }).additionalProperty)}`;
  }
  return `${at} ${e.message ?? 'is not valid'}`;
}

/** CreateJob's documentParameters against the template's schema: a 400 naming each violation. */
export function validateDocumentParameters(schema: object, values: Record<string, string>): void {
  const fn = compile(schema);
  if (fn(values)) return;
  const violations = (fn.errors ?? []).map(describe);
  throw new FleetJobsError(
    'InvalidRequest',
    `documentParameters does not match the job template's documentParametersSchema: ${violations.join('; ')}`,
  );
}
