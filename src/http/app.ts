import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { LIMITS } from '../protocol/limits.js';
import { installErrorHandler, sendError } from './error-handler.js';
import { installRequestLog, requestLogOptions } from './request-log.js';
import { errorResponses, routeErrorStatuses } from './schemas/responses.js';
import { healthRoutes } from './routes/health.js';
import { eventRoutes } from './routes/events.js';
import { controlPlaneRoutes } from './routes/control-plane.js';
import { metricsRoutes } from './routes/metrics.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { ServiceDeps } from '../service/deps.js';
import type { OperatorKeyResolver } from '../service/operator-keys.js';
import { installAuth } from './auth.js';
import { schemaCompilers } from './schema-compilers.js';
import { installTenantScope, requestTenant } from './tenant-scope.js';
import { tenantDb } from '../store/db.js';
import { tenantRoutes } from './routes/tenants.js';
import { credentialRoutes } from './routes/credentials.js';
import { operatorKeyRoutes } from './routes/operator-keys.js';
import { endpointRoutes, type DeviceEndpoints } from './routes/endpoints.js';

export interface HttpDeps extends ServiceDeps {
  /** True once the broker and workers are up; /readyz reports it. */
  isReady: () => boolean;
  /** Why a started service is not ready (a dependency such as the external broker is down), or undefined. */
  unreadyReason?: () => string | undefined;
  /** The device listeners, for DescribeEndpoint; known once they listen. */
  deviceEndpoints?: () => DeviceEndpoints;
  /** Operator authentication (src/http/auth.ts); absent means AUTH_MODE=off. */
  auth?: {
    mode: 'required' | 'off';
    operatorKeys: OperatorKeyResolver | undefined;
    masterKey: Buffer | undefined;
    rateLimit?: { perSecond: number; burst: number } | undefined;
    /** Called after a thing's secrets were revoked, to end the sessions they opened. */
    onDeviceCredentialsRevoked?: (thingName: string) => void;
  };
}

/**
 * The route's OpenAPI operationId, which client generators name their methods by: the AWS operation its summary
 * opens with (`ListJobs, newest first`, `fleetjobs extension (ExportJobTemplate)`), or one the route sets.
 */
function operationIdOf(schema: { summary?: string; operationId?: string }, route: string): string {
  if (schema.operationId !== undefined) return schema.operationId;
  const named = /^(?:fleetjobs extension \()?((?:[A-Z][a-z]+){2,})\b/.exec(schema.summary ?? '');
  if (named?.[1] === undefined)
    throw new Error(`${route}: set an operationId (its summary names no operation)`);
  return named[1];
}

/** [STYLE] The operator API as an app that never listens by itself: tests drive it through inject(). */
export async function buildApp(deps: HttpDeps, options: { logger: Logger }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: LIMITS.MAX_HTTP_BODY_BYTES,
    // Thing names reach 128 characters (find-my-way's default limit on a path parameter is 100).
    routerOptions: { maxParamLength: 256 },
    ...requestLogOptions(),
    // A malformed URL (bad percent-encoding) or content type is refused before routing; answer it like every
    // other client error, with the AWS error name.
    frameworkErrors: (err, _request, reply) => sendError(reply, 'InvalidRequest', err.message),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
    // No route has a request headers schema, which fastify lowercases only with its own compiler factory.
    schemaController: { compilersFactory: schemaCompilers },
  });
  installRequestLog(app, (name) => deps.metrics?.errorAnswered('operator', name));
  installErrorHandler(app, { notFound: (method, path) => `no route for ${method} ${path}; see /docs` });
  // Every documented route lists the catalog errors it can answer, serialised with the same schema.
  app.addHook('onRoute', (route) => {
    if (route.schema === undefined || route.schema.hide === true) return;
    const method = Array.isArray(route.method) ? String(route.method[0]) : route.method;
    route.schema = {
      ...route.schema,
      operationId: operationIdOf(route.schema, `${method} ${route.url}`),
      response: {
        ...errorResponses(routeErrorStatuses(method, route.url.includes(':'))),
        ...(route.schema.response as object | undefined),
      },
    };
  });
  installTenantScope(app);
  installAuth(app, {
    mode: deps.auth?.mode ?? 'off',
    resolver: deps.auth?.operatorKeys,
    clock: deps.clock,
    ...(deps.auth?.rateLimit ? { rateLimit: deps.auth.rateLimit } : {}),
  });
  await app.register(swagger, {
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, so propertyNames and type lists (the validation rules the
      // routes use) are valid in the document as they are.
      openapi: '3.1.0',
      info: {
        title: 'fleetjobs operator API',
        version: '1',
        description:
          'AWS IoT Jobs control-plane shapes. Authorize with an operator key (the bearer token ' +
          '<accessKeyId>.<secret>); AWS SDKs and the AWS CLI sign with SigV4 instead.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      // Relative: "Try it out" calls the host and port that served the page, wherever fleetjobs listens.
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An operator key token from POST /operator-keys or the first admin key serve prints',
          },
          sigv4: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description:
              'AWS Signature Version 4 (AWS4-HMAC-SHA256, service iot) made with the key id and secret; ' +
              'sign with an AWS SDK, this page cannot',
          },
        },
      },
      security: [{ bearer: [] }, { sigv4: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Operator routes run on the request's tenant db: row-level security keeps them to its rows (GET /events makes
  // its own). Probes, metrics and tenants are the deployment's, on the system db (tenantAllows keeps the last two
  // to the default tenant).
  const tenant: HttpDeps = { ...deps, db: tenantDb(deps.db, requestTenant) };
  await app.register(healthRoutes(deps));
  await app.register(controlPlaneRoutes(tenant));
  await app.register(credentialRoutes(tenant, deps.auth?.onDeviceCredentialsRevoked, deps.auth?.masterKey));
  if (deps.auth?.masterKey !== undefined) {
    await app.register(operatorKeyRoutes(tenant, deps, deps.auth.masterKey));
  }
  await app.register(tenantRoutes(deps));
  await app.register(endpointRoutes(tenant));
  await app.register(metricsRoutes(deps));
  await app.register(eventRoutes(deps));
  await app.register(dashboardRoutes());
  return app;
}
