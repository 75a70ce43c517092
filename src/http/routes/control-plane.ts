import type { FastifyPluginAsync } from 'fastify';
import { Ajv, type Options as AjvOptions } from 'ajv';
import type { HttpDeps } from '../app.js';
import { compiledOnce } from '../schema-compilers.js';
import { thingRoutes } from './things.js';
import { thingGroupRoutes } from './thing-groups.js';
import { jobRoutes } from './jobs.js';
import { executionRoutes } from './executions.js';
import { jobTemplateRoutes } from './job-templates.js';
import { jobScheduleRoutes } from './job-schedules.js';

const AJV_OPTIONS: AjvOptions = {
  allErrors: false,
  useDefaults: true,
  removeAdditional: false,
  strict: false,
  unicodeRegExp: true,
};

// One pair per process: every app compiles the same schemas (see compiledOnce).
const strict = compiledOnce(new Ajv(AJV_OPTIONS));
const coercing = compiledOnce(new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' }));

/**
 * [protocol §5] The AWS IoT control plane: things, thing groups, jobs, executions and job templates. Its own context
 * so that its validation rules stay its own: bodies are validated without coercion (a number sent for a string is
 * a 400, as AWS answers), while path and query strings are coerced to the types their schemas declare. An empty
 * body, with or without a JSON content type, is `{}` (AWS clients send none for operations without members).
 */
export function controlPlaneRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing)(schema));
    const defaultJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(null, {});
      return defaultJson(request, text, done);
    });
    app.addHook('preValidation', async (request) => {
      if (request.body === undefined && request.method !== 'GET' && request.method !== 'DELETE') {
        request.body = {};
      }
    });
    await app.register(thingRoutes(deps));
    await app.register(thingGroupRoutes(deps));
    await app.register(jobRoutes(deps));
    await app.register(executionRoutes(deps));
    await app.register(jobTemplateRoutes(deps));
    await app.register(jobScheduleRoutes(deps));
  };
}
