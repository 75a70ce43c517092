import type { FastifyPluginAsync } from 'fastify';
import { migrationStatus } from '../../store/migrate.js';
import type { HttpDeps } from '../app.js';

export function healthRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      try {
        const { current, expected } = await migrationStatus(deps.db);
        if (current !== expected) {
          return reply
            .code(503)
            .send({ status: 'not ready', message: `database at migration ${current}, expected ${expected}` });
        }
      } catch {
        return reply.code(503).send({ status: 'not ready', message: 'the database is not reachable' });
      }
      if (!deps.isReady()) return reply.code(503).send({ status: 'not ready', message: 'starting' });
      return { status: 'ready' };
    });
  };
}
