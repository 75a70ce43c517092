import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ERRORS, FleetJobsError, type ErrorKind } from '../protocol/errors.js';

/** The AWS error name and HTTP status a kind is answered with; the device plane renames a few. */
export type ErrorNaming = (kind: ErrorKind) => { name: string; statusCode: number };

const catalogNaming: ErrorNaming = (kind) => ERRORS[kind];

/** `{ message, requestId }` with the AWS error name in x-amzn-ErrorType. */
export function sendError(
  reply: FastifyReply,
  kind: ErrorKind,
  message: string,
  naming: ErrorNaming = catalogNaming,
): FastifyReply {
  const { name, statusCode } = naming(kind);
  return reply
    .code(statusCode)
    .header('x-amzn-ErrorType', name)
    .send({ message, requestId: reply.request.id });
}

export interface ErrorHandlerOptions {
  naming?: ErrorNaming;
  /** The message of a request that matches no route. */
  notFound: (method: string, path: string) => string;
}

/**
 * [protocol §5] The error handler of both HTTP apps: every failure is a JSON `{ message, requestId }` with the AWS
 * error name in x-amzn-ErrorType. 5xx bodies never carry a driver's message; the log has the whole error.
 */
export function installErrorHandler(app: FastifyInstance, options: ErrorHandlerOptions): void {
  const naming = options.naming ?? catalogNaming;
  const send = (reply: FastifyReply, kind: ErrorKind, message: string) =>
    sendError(reply, kind, message, naming);
  app.setErrorHandler((err: FastifyError | FleetJobsError, request, reply) => {
    if (err instanceof FleetJobsError) {
      if (err.entry.statusCode >= 500) request.log.error({ err }, 'request failed');
      return send(reply, err.kind, err.message);
    }
    if ('validation' in err && err.validation) return send(reply, 'InvalidRequest', err.message);
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status === 413) return send(reply, 'PayloadTooLarge', ERRORS.PayloadTooLarge.message);
    if (status === 415) return send(reply, 'InvalidRequest', 'send the body as application/json');
    if (status >= 400 && status < 500) {
      // Fastify's own client errors: malformed JSON, empty body with a JSON content type, and the like.
      return send(reply, 'InvalidRequest', err.message);
    }
    request.log.error({ err }, 'request failed');
    return send(reply, 'Internal', ERRORS.Internal.message);
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, 'ResourceNotFound', options.notFound(request.method, request.url.split('?')[0] ?? '')),
  );
}
