import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ERRORS, FleetJobsError, type ErrorKind } from '../protocol/errors.js';

export function sendError(reply: FastifyReply, kind: ErrorKind, message: string): FastifyReply {
  const entry = ERRORS[kind];
  return reply.code(entry.statusCode).header('x-amzn-ErrorType', entry.name).send({ message });
}

/**
 * [SPEC 5] Every failure is a JSON `{ message }` with the AWS error name in x-amzn-ErrorType. 5xx bodies never
 * carry a driver's message; the log has the whole error.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | FleetJobsError, request, reply) => {
    if (err instanceof FleetJobsError) {
      if (err.entry.statusCode >= 500) request.log.error({ err }, 'request failed');
      return sendError(reply, err.kind, err.message);
    }
    if ('validation' in err && err.validation) {
      return sendError(reply, 'InvalidRequest', err.message);
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status === 413) return sendError(reply, 'PayloadTooLarge', ERRORS.PayloadTooLarge.message);
    if (status === 415) return sendError(reply, 'InvalidRequest', 'send the body as application/json');
    if (status >= 400 && status < 500) {
      // Fastify's own client errors: malformed JSON, empty body with a JSON content type, and the like.
      return sendError(reply, 'InvalidRequest', err.message);
    }
    request.log.error({ err }, 'request failed');
    return sendError(reply, 'Internal', ERRORS.Internal.message);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      'ResourceNotFound',
      `no route for ${request.method} ${request.url.split('?')[0]}; see /docs`,
    ),
  );
}
