import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { LIMITS } from '../protocol/limits.js';
import { installErrorHandler } from './error-handler.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { ServiceDeps } from '../service/deps.js';

export interface HttpDeps extends ServiceDeps {
  /** True once the broker and workers are up; /readyz reports it. */
  isReady: () => boolean;
}

/** [STYLE] The operator API as an app that never listens by itself: tests drive it through inject(). */
export async function buildApp(deps: HttpDeps, options: { logger: Logger }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: LIMITS.MAX_HTTP_BODY_BYTES,
    disableRequestLogging: true,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
  });
  installErrorHandler(app);
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
  await app.register(metricsRoutes(deps));
  await app.register(dashboardRoutes);
  return app;
}
