import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { LIMITS } from '../protocol/limits.js';
import { installErrorHandler, sendError } from './error-handler.js';
import { healthRoutes } from './routes/health.js';
import { eventRoutes } from './routes/events.js';
import { controlPlaneRoutes } from './routes/control-plane.js';
import { metricsRoutes } from './routes/metrics.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { ServiceDeps } from '../service/deps.js';
import type { OperatorKeyResolver } from '../service/operator-keys.js';
import { installAuth } from './auth.js';
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

/** [STYLE] The operator API as an app that never listens by itself: tests drive it through inject(). */
export async function buildApp(deps: HttpDeps, options: { logger: Logger }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: LIMITS.MAX_HTTP_BODY_BYTES,
    // Thing names reach 128 characters (find-my-way's default limit on a path parameter is 100).
    routerOptions: { maxParamLength: 256 },
    logController: new LogController({ disableRequestLogging: true }),
    // A malformed URL (bad percent-encoding) or content type is refused before routing; answer it like every
    // other client error, with the AWS error name.
    frameworkErrors: (err, _request, reply) => sendError(reply, 'InvalidRequest', err.message),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
  });
  installErrorHandler(app);
  installAuth(app, {
    mode: deps.auth?.mode ?? 'off',
    resolver: deps.auth?.operatorKeys,
    clock: deps.clock,
    ...(deps.auth?.rateLimit ? { rateLimit: deps.auth.rateLimit } : {}),
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'fleetjobs operator API',
        version: '1',
        description: 'AWS IoT Jobs control-plane shapes',
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes(deps));
  await app.register(controlPlaneRoutes(deps));
  await app.register(credentialRoutes(deps, deps.auth?.onDeviceCredentialsRevoked, deps.auth?.masterKey));
  if (deps.auth?.masterKey !== undefined) await app.register(operatorKeyRoutes(deps, deps.auth.masterKey));
  await app.register(endpointRoutes(deps));
  await app.register(metricsRoutes(deps));
  await app.register(eventRoutes(deps));
  await app.register(dashboardRoutes());
  return app;
}
