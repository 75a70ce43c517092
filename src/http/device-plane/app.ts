import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { ValidateFunction } from 'ajv';
import { ERRORS, FleetJobsError, isFleetJobsError, type ErrorKind } from '../../protocol/errors.js';
import { LIMITS, isValidJobId, isValidThingName } from '../../protocol/limits.js';
import { describeValidationError, validators } from '../../protocol/messages.js';
import type { JobExecution, StartNextRequest, UpdateRequest } from '../../protocol/messages.js';
import type { Operation } from '../../protocol/topics.js';
import { describeExecution } from '../../service/describe-execution.js';
import { getPendingExecutions } from '../../service/get-pending-executions.js';
import { startNext } from '../../service/start-next.js';
import { updateExecution } from '../../service/update-execution.js';
import type { ServiceDeps } from '../../service/deps.js';
import { selectThingTenant } from '../../store/things.js';
import { createRateLimiter, type RateLimit } from '../../service/token-bucket.js';
import { DEFAULT_DEVICE_RATE_LIMIT } from '../../device/router.js';
import type { ExecutionWithDocument } from '../../store/executions.js';
import { toExecutionState, toJobExecution, toSummary } from '../../device/payloads.js';
import { roleAllows } from '../auth.js';
import { EMPTY_SHA256 } from '../sigv4.js';
import type { DeviceCaller } from './auth.js';
import { installErrorHandler, sendError, type ErrorNaming } from '../error-handler.js';
import { installRequestLog, requestLogOptions } from '../request-log.js';

/** The SHA-256 of each request body as received, for SigV4 (the body itself is parsed before authentication). */
const bodyHashes = new WeakMap<FastifyRequest, string>();

/**
 * [protocol §5] The device HTTPS data plane (AWS `iot-jobs-data`, reference §7) for devices that poll instead of
 * holding an MQTT session. It calls the same device-side services as the MQTT router, so the state machine,
 * the guards and the notifications they write are the same; only the shapes differ: no clientToken or
 * timestamp in bodies, and jobDocument is the JSON text as the operator sent it, not an object.
 */
export interface DevicePlaneDeps extends ServiceDeps {
  /**
   * Who is calling (src/http/device-plane/auth.ts): the thing the request authenticated as (client certificate,
   * HTTP Basic or SigV4), an operator key acting for a thing, `undefined` without credentials, or a refusal.
   * `payloadHash` is the hex SHA-256 of the body as received, for SigV4.
   */
  authenticate(request: FastifyRequest, payloadHash: string): Promise<DeviceCaller>;
  /** AUTH_MODE=off: an unauthenticated request may act for the thing its path names (development only). */
  authOff: boolean;
  /** [protocol §8] Per-thing request rate, the same default as on MQTT; beyond it, ThrottlingException. */
  rateLimit?: RateLimit | undefined;
}

export interface DevicePlaneOptions {
  logger: Logger;
  /** PEM material for HTTPS; with `ca`, client certificates are required (mTLS). */
  https?: { cert: Buffer | string; key: Buffer | string; ca?: Buffer | string | undefined } | undefined;
}

/**
 * The data plane has its own exception names (reference §2, HTTPS equivalents); every other kind keeps the
 * catalog's. It has no version-conflict exception: a stale expectedVersion is an invalid transition here.
 */
const DATA_PLANE_ERRORS: Partial<Record<ErrorKind, { name: string; statusCode: number }>> = {
  VersionMismatch: { name: 'InvalidStateTransitionException', statusCode: 409 },
  InvalidJson: { name: 'InvalidRequestException', statusCode: 400 },
  Internal: { name: 'ServiceUnavailableException', statusCode: 503 },
};

const dataPlaneNaming: ErrorNaming = (kind) => DATA_PLANE_ERRORS[kind] ?? ERRORS[kind];

function send(reply: FastifyReply, kind: ErrorKind, message: string): FastifyReply {
  return sendError(reply, kind, message, dataPlaneNaming);
}

interface ThingParams {
  thingName: string;
}
interface JobParams extends ThingParams {
  jobId: string;
}

function checkThing(thingName: string): void {
  if (!isValidThingName(thingName)) {
    throw new FleetJobsError('InvalidRequest', `thingName must match [a-zA-Z0-9:_-]{1,128}`);
  }
}

function checkJobId(jobId: string, allowNext: boolean): void {
  if (!(isValidJobId(jobId) || (allowNext && jobId === '$next'))) {
    throw new FleetJobsError(
      'InvalidRequest',
      `jobId must match [a-zA-Z0-9_-]{1,64}${allowNext ? ' or be $next' : ''}`,
    );
  }
}

function validate<T>(fn: ValidateFunction<T>, body: unknown): T {
  const value = body ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new FleetJobsError('InvalidRequest', 'the body must be a JSON object');
  }
  if (!fn(value)) throw new FleetJobsError('InvalidRequest', describeValidationError(fn.errors));
  return value;
}

/** Query strings arrive as text; the model's booleans and longs are parsed strictly. */
function queryBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new FleetJobsError('InvalidRequest', `${name} must be true or false`);
}

function queryPositiveInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,14}$/.test(value)) {
    throw new FleetJobsError('InvalidRequest', `${name} must be a positive integer`);
  }
  return Number(value);
}

/** The HTTPS JobExecution: the MQTT shape plus thingName, with the document as its JSON text. */
function httpsExecution(row: ExecutionWithDocument, now: Date, includeJobDocument: boolean): JobExecution {
  const e = toJobExecution(row, now, false);
  const out: JobExecution = { ...e, thingName: row.thingName };
  if (includeJobDocument) out.jobDocument = row.jobDocument;
  return out;
}

export async function buildDevicePlaneApp(
  deps: DevicePlaneDeps,
  options: DevicePlaneOptions,
): Promise<FastifyInstance> {
  const https = options.https;
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: LIMITS.MAX_MQTT_PAYLOAD_BYTES,
    // Thing names reach 128 characters (find-my-way's default limit on a path parameter is 100).
    routerOptions: { maxParamLength: 256 },
    ...requestLogOptions(),
    // A malformed URL (bad percent-encoding) is refused before routing: answer it like any other bad request.
    frameworkErrors: (err, _request, reply) => send(reply, 'InvalidRequest', err.message),
    ...(https
      ? {
          https: {
            cert: https.cert,
            key: https.key,
            ...(https.ca === undefined ? {} : { ca: https.ca, requestCert: true, rejectUnauthorized: true }),
          },
        }
      : {}),
  });
  // Devices send bodies with or without a JSON content type; whatever the type, the body must be JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    bodyHashes.set(request, createHash('sha256').update(raw).digest('hex'));
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch {
      done(new FleetJobsError('InvalidJson'), undefined);
    }
  });

  installRequestLog(app, (name) => deps.metrics?.errorAnswered('device-https', name));
  installErrorHandler(app, {
    naming: dataPlaneNaming,
    notFound: (method, path) =>
      `no device operation at ${method} ${path}; the operations are ` +
      'GET /things/{thingName}/jobs, PUT /things/{thingName}/jobs/$next, GET|POST /things/{thingName}/jobs/{jobId}',
  });

  // [protocol §3] The thing name comes from authentication, never from the path alone.
  app.addHook('preHandler', async (request: FastifyRequest<{ Params: Partial<ThingParams> }>, reply) => {
    let identity = await deps.authenticate(request, bodyHashes.get(request) ?? EMPTY_SHA256);
    // AUTH_MODE=off accepts anyone, as the broker does; only a client certificate still names the thing.
    if (deps.authOff && (identity === 'throttled' || (identity !== undefined && 'refused' in identity))) {
      identity = undefined;
    }
    if (identity === 'throttled' || (identity !== undefined && 'refused' in identity)) {
      const reason = identity === 'throttled' ? 'throttled' : identity.refused;
      request.log.warn({ ip: request.ip, reason }, 'device HTTPS login refused');
    }
    if (identity === 'throttled') return send(reply, 'Throttled', 'too many failed logins; retry later');
    if (identity !== undefined && 'refused' in identity) {
      return send(reply, 'Unauthorized', identity.refused).header(
        'www-authenticate',
        'Basic realm="fleetjobs devices"',
      );
    }
    if (identity === undefined) {
      if (deps.authOff) return;
      return send(
        reply,
        'Unauthorized',
        'send a client certificate, HTTP Basic credentials (thing name and its secret) or a SigV4 signature',
      ).header('www-authenticate', 'Basic realm="fleetjobs devices"');
    }
    const thingName = request.params.thingName;
    if ('operator' in identity) {
      const { role, accessKeyId, tenantId } = identity.operator;
      if (!roleAllows(role, request.method, request.routeOptions.url)) {
        return send(
          reply,
          'Forbidden',
          `the ${role} key ${accessKeyId} may not ${request.method} device jobs`,
        );
      }
      // A key acts for its own tenant's things; another tenant's thing is answered as one that does not exist.
      const owner = thingName === undefined ? undefined : await selectThingTenant(deps.db, thingName);
      if (owner !== undefined && owner !== tenantId) {
        return send(reply, 'ResourceNotFound', `thing ${thingName as string} does not exist`);
      }
      return;
    }
    if (thingName !== undefined && thingName !== identity.thingName) {
      return send(reply, 'Forbidden', `${identity.thingName} may not act for thing ${thingName}`);
    }
  });

  const limiter = createRateLimiter(deps.rateLimit ?? DEFAULT_DEVICE_RATE_LIMIT);

  /** Runs one operation for a thing under its rate limit, and counts it by outcome for GET /metrics. */
  const run = async <T>(operation: Operation, thingName: string, fn: () => Promise<T>): Promise<T> => {
    const startedAt = performance.now();
    const seconds = () => (performance.now() - startedAt) / 1000;
    try {
      if (!limiter.take(thingName)) throw new FleetJobsError('Throttled');
      const result = await fn();
      deps.metrics?.deviceRequest('https', operation, 'accepted', seconds());
      return result;
    } catch (err) {
      deps.metrics?.deviceRequest(
        'https',
        operation,
        isFleetJobsError(err) ? err.entry.mqttCode : 'InternalError',
        seconds(),
      );
      throw err;
    }
  };

  app.get<{ Params: ThingParams }>('/things/:thingName/jobs', async (request) =>
    run('GetPendingJobExecutions', request.params.thingName, async () => {
      checkThing(request.params.thingName);
      const pending = await getPendingExecutions(deps, request.params.thingName);
      return { inProgressJobs: pending.inProgress.map(toSummary), queuedJobs: pending.queued.map(toSummary) };
    }),
  );

  // StartNext is PUT on the literal `$next`; matching it as a parameter also accepts a client that sends %24next.
  app.put<{ Params: JobParams }>('/things/:thingName/jobs/:jobId', async (request) =>
    run('StartNextPendingJobExecution', request.params.thingName, async () => {
      checkThing(request.params.thingName);
      if (request.params.jobId !== '$next') {
        throw new FleetJobsError(
          'InvalidRequest',
          'PUT is StartNextPendingJobExecution, on /things/{thingName}/jobs/$next',
        );
      }
      const body = validate<StartNextRequest>(validators.StartNextPendingJobExecution, request.body);
      const row = await startNext(deps, request.params.thingName, {
        statusDetails: body.statusDetails,
        stepTimeoutInMinutes: body.stepTimeoutInMinutes,
      });
      return row === undefined ? {} : { execution: httpsExecution(row, deps.clock(), true) };
    }),
  );

  app.get<{ Params: JobParams; Querystring: Record<string, unknown> }>(
    '/things/:thingName/jobs/:jobId',
    async (request) =>
      run('DescribeJobExecution', request.params.thingName, async () => {
        const { thingName, jobId } = request.params;
        checkThing(thingName);
        checkJobId(jobId, true);
        const executionNumber = queryPositiveInt(request.query.executionNumber, 'executionNumber');
        const includeJobDocument =
          queryBoolean(request.query.includeJobDocument, 'includeJobDocument') ?? true;
        const row = await describeExecution(deps, { thingName, jobId, executionNumber });
        return row === undefined ? {} : { execution: httpsExecution(row, deps.clock(), includeJobDocument) };
      }),
  );

  app.post<{ Params: JobParams }>('/things/:thingName/jobs/:jobId', async (request) =>
    run('UpdateJobExecution', request.params.thingName, async () => {
      const { thingName, jobId } = request.params;
      checkThing(thingName);
      checkJobId(jobId, false);
      const body = validate<UpdateRequest>(validators.UpdateJobExecution, request.body);
      const row = await updateExecution(deps, {
        thingName,
        jobId,
        status: body.status,
        statusDetails: body.statusDetails,
        expectedVersion: body.expectedVersion === undefined ? undefined : Number(body.expectedVersion),
        executionNumber: body.executionNumber,
        stepTimeoutInMinutes: body.stepTimeoutInMinutes,
      });
      const out: { executionState?: unknown; jobDocument?: string } = {};
      if (body.includeJobExecutionState === true) out.executionState = toExecutionState(row);
      if (body.includeJobDocument === true) out.jobDocument = row.jobDocument;
      return out;
    }),
  );

  return app;
}
