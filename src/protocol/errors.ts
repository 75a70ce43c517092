/**
 * The error catalog: one entry per failure a caller can see, with its AWS control-plane name and HTTP status,
 * its device-plane (MQTT) code, and a default message that says how to fix it. docs/errors.md is generated
 * from the same table and a unit test keeps the two in sync.
 */
export const MQTT_ERROR_CODES = [
  'InvalidTopic',
  'InvalidJson',
  'InvalidRequest',
  'InvalidStateTransition',
  'ResourceNotFound',
  'VersionMismatch',
  'InternalError',
  'RequestThrottled',
  'TerminalStateReached',
] as const;
export type MqttErrorCode = (typeof MQTT_ERROR_CODES)[number];

export interface ErrorEntry {
  /** AWS error name, sent in the `x-amzn-ErrorType` header. */
  readonly name: string;
  readonly statusCode: number;
  /** The `code` of a device-plane `rejected` reply. */
  readonly mqttCode: MqttErrorCode;
  readonly message: string;
}

export const ERRORS = {
  InvalidRequest: {
    name: 'InvalidRequestException',
    statusCode: 400,
    mqttCode: 'InvalidRequest',
    message: 'The request is not valid; correct the fields named in the message and send it again.',
  },
  InvalidJson: {
    name: 'InvalidRequestException',
    statusCode: 400,
    mqttCode: 'InvalidJson',
    message: 'The payload is not a UTF-8 JSON object; send a JSON object such as {}.',
  },
  InvalidTopic: {
    name: 'InvalidRequestException',
    statusCode: 400,
    mqttCode: 'InvalidTopic',
    message:
      'The topic names no jobs operation; publish to get, start-next, {jobId}/get or {jobId}/update under the jobs root.',
  },
  ResourceNotFound: {
    name: 'ResourceNotFoundException',
    statusCode: 404,
    mqttCode: 'ResourceNotFound',
    message: 'The resource does not exist; check the name or create it first.',
  },
  ResourceAlreadyExists: {
    name: 'ResourceAlreadyExistsException',
    statusCode: 409,
    mqttCode: 'InvalidRequest',
    message: 'A resource with this id already exists; choose another id or delete the existing one.',
  },
  InvalidStateTransition: {
    name: 'InvalidStateTransitionException',
    statusCode: 409,
    mqttCode: 'InvalidStateTransition',
    message: 'The resource is not in a status that allows this change; describe it to see its status.',
  },
  VersionMismatch: {
    name: 'VersionConflictException',
    statusCode: 409,
    mqttCode: 'VersionMismatch',
    message: 'expectedVersion does not match the current versionNumber; read the execution and retry.',
  },
  Conflict: {
    name: 'ConflictException',
    statusCode: 409,
    mqttCode: 'InvalidRequest',
    message: 'The request conflicts with a change in progress; retry later.',
  },
  TerminalStateReached: {
    name: 'TerminalStateException',
    statusCode: 410,
    mqttCode: 'TerminalStateReached',
    message: 'The execution is in a terminal status; it can no longer change.',
  },
  LimitExceeded: {
    name: 'LimitExceededException',
    statusCode: 410,
    mqttCode: 'InvalidRequest',
    message: 'A limit was exceeded; see docs/limits.md for the limit and reduce the request.',
  },
  PayloadTooLarge: {
    name: 'InvalidRequestException',
    statusCode: 413,
    mqttCode: 'InvalidRequest',
    message: 'The request body is too large; see docs/limits.md for the maximum size.',
  },
  Throttled: {
    name: 'ThrottlingException',
    statusCode: 429,
    mqttCode: 'RequestThrottled',
    message: 'Too many requests; retry after a short back-off.',
  },
  Unauthorized: {
    name: 'UnauthorizedException',
    statusCode: 401,
    mqttCode: 'InvalidRequest',
    message: 'Missing or invalid credentials; send Authorization: Bearer <key> or sign with SigV4.',
  },
  Forbidden: {
    name: 'ForbiddenException',
    statusCode: 403,
    mqttCode: 'InvalidRequest',
    message: "The key's role does not allow this operation; use a key with the operator or admin role.",
  },
  MethodNotAllowed: {
    name: 'MethodNotAllowedException',
    statusCode: 405,
    mqttCode: 'InvalidRequest',
    message: 'The method is not allowed on this path; see the OpenAPI document at /docs.',
  },
  Internal: {
    name: 'InternalFailureException',
    statusCode: 500,
    mqttCode: 'InternalError',
    message: 'An internal error occurred; retry, and report it if it persists.',
  },
  ServiceUnavailable: {
    name: 'ServiceUnavailableException',
    statusCode: 503,
    mqttCode: 'InternalError',
    message: 'The service is not ready; retry shortly.',
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorKind = keyof typeof ERRORS;

export interface ExecutionStateSnapshot {
  status: string;
  statusDetails?: Record<string, string>;
  versionNumber: number;
}

/** The one error type every layer throws; transports turn it into a 4xx/5xx body or a `rejected` reply. */
export class FleetJobsError extends Error {
  readonly kind: ErrorKind;
  readonly executionState: ExecutionStateSnapshot | undefined;

  constructor(
    kind: ErrorKind,
    message?: string,
    options?: { executionState?: ExecutionStateSnapshot; cause?: unknown },
  ) {
    super(
      message ?? ERRORS[kind].message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'FleetJobsError';
    this.kind = kind;
    this.executionState = options?.executionState;
  }

  get entry(): ErrorEntry {
    return ERRORS[this.kind];
  }
}

export function isFleetJobsError(err: unknown): err is FleetJobsError {
  return err instanceof FleetJobsError;
}
