import type { FastifyPluginAsync } from 'fastify';
import { migrationStatus } from '../../store/migrate.js';
import type { HttpDeps } from '../app.js';

/** How long /readyz waits for the database before it answers 503. */
const READY_TIMEOUT_MS = 2000;

/** Probes are left out of the OpenAPI document; their bodies are still serialised from a schema. */
const probe = {
  schema: {
    hide: true,
    response: {
      '2xx': { type: 'object', properties: { status: { type: 'string' }, message: { type: 'string' } } },
      503: { type: 'object', properties: { status: { type: 'string' }, message: { type: 'string' } } },
    },
  },
} as const;

export function healthRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', probe, async () => ({ status: 'ok' }));
    app.get('/readyz', probe, async (_request, reply) => {
      try {
        // A blackholed database fails the store's own deadlines; this one keeps a probe from waiting for them.
        const status = await Promise.race([
          migrationStatus(deps.db),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), READY_TIMEOUT_MS).unref()),
        ]);
        if (status === undefined) throw new Error('timeout');
        const { current, expected } = status;
        if (current !== expected) {
          return reply
            .code(503)
            .send({ status: 'not ready', message: `database at migration ${current}, expected ${expected}` });
        }
      } catch {
        return reply.code(503).send({ status: 'not ready', message: 'the database is not reachable' });
      }
      if (!deps.isReady()) return reply.code(503).send({ status: 'not ready', message: 'starting' });
      const reason = deps.unreadyReason?.();
      if (reason !== undefined) return reply.code(503).send({ status: 'not ready', message: reason });
      return { status: 'ready' };
    });
  };
}
