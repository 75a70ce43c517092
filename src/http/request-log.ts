import { randomUUID } from 'node:crypto';
import { LogController, type FastifyInstance } from 'fastify';

/**
 * Fastify options of both HTTP apps: every request gets a fresh id (never the caller's, which could collide or
 * impersonate another request in the log), logged as `requestId`. The request line comes from installRequestLog,
 * one per request with its route and time, instead of Fastify's two.
 */
export function requestLogOptions() {
  return {
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
  } as const;
}

/** Probes and scrapes arrive every few seconds; their lines are debug so that they do not drown the rest. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per answered request (method, route, status, time) and the request id in x-amzn-RequestId, the
 * header AWS SDKs read and print with an error. `onError` hears the AWS error name of every error answered.
 */
export function installRequestLog(app: FastifyInstance, onError?: (name: string) => void): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-amzn-RequestId', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const errorName = reply.getHeader('x-amzn-ErrorType');
    if (typeof errorName === 'string') onError?.(errorName);
    const route = request.routeOptions.url;
    const line = {
      method: request.method,
      url: request.url.split('?')[0],
      route,
      statusCode: reply.statusCode,
      responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (route !== undefined && QUIET_ROUTES.has(route)) request.log.debug(line, 'request');
    else request.log.info(line, 'request');
  });
}
