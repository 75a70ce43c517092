import type { ValidateFunction } from 'ajv';
import { ERRORS, isFleetJobsError, type MqttErrorCode } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { describeValidationError, epochSeconds, validators } from '../protocol/messages.js';
import type { Operation } from '../protocol/topics.js';
import type { ServiceDeps } from '../service/deps.js';
import type { DeviceRequestOutcome } from '../service/metrics.js';
import { createRateLimiter, type RateLimit } from '../service/token-bucket.js';
import { handleDescribe } from './describe-execution.js';
import { handleGetPending } from './get-pending-executions.js';
import type { DeviceHandler } from './handler.js';
import { rejectedPayload, toExecutionState } from './payloads.js';
import { handleStartNext } from './start-next.js';
import { handleUpdate } from './update-execution.js';

/**
 * What the broker does with a publish the topic ACL (broker/acl.ts) allowed: an ordinary publish (not a jobs
 * topic, or a reply or event topic the ACL keeps devices from), or a request (or a malformed topic under the
 * root) the router answers with `handle`.
 */
export type PublishVerdict = { action: 'forward' } | { action: 'answer' };

export interface DeviceReply {
  topic: string;
  payload: Buffer;
}

export interface DeviceRouter {
  inspect(topic: string): PublishVerdict;
  /** Answers a request with its accepted or rejected reply; never throws, never leaves a request unanswered. */
  handle(topic: string, payload: Buffer): Promise<DeviceReply>;
  /** Reply topics carry one client's answer and are never fanned out to subscribers. */
  isReplyTopic(topic: string): boolean;
}

export type { RateLimit } from '../service/token-bucket.js';

/** [protocol §8] Generous enough for a device that pipelines requests; abuse gets RequestThrottled. */
export const DEFAULT_DEVICE_RATE_LIMIT: RateLimit = {
  perSecond: LIMITS.DEVICE_REQUESTS_PER_SECOND,
  burst: LIMITS.DEVICE_REQUEST_BURST,
};

const HANDLERS: Record<Operation, { handler: DeviceHandler<never>; validate: ValidateFunction }> = {
  GetPendingJobExecutions: { handler: handleGetPending, validate: validators.GetPendingJobExecutions },
  StartNextPendingJobExecution: {
    handler: handleStartNext,
    validate: validators.StartNextPendingJobExecution,
  },
  DescribeJobExecution: { handler: handleDescribe, validate: validators.DescribeJobExecution },
  UpdateJobExecution: { handler: handleUpdate, validate: validators.UpdateJobExecution },
};

// Shared verdicts: inspect runs on every publish and allocates nothing for these.
const FORWARD: PublishVerdict = Object.freeze({ action: 'forward' });
const ANSWER: PublishVerdict = Object.freeze({ action: 'answer' });

const utf8 = new TextDecoder('utf-8', { fatal: true });

class RequestError extends Error {
  constructor(
    readonly code: MqttErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function parsePayload(payload: Buffer): Record<string, unknown> {
  if (payload.length > LIMITS.MAX_MQTT_PAYLOAD_BYTES) {
    throw new RequestError(
      'InvalidRequest',
      `the payload is ${payload.length} bytes; the limit is ${LIMITS.MAX_MQTT_PAYLOAD_BYTES}`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new RequestError('InvalidJson', 'the payload is not valid UTF-8; send a UTF-8 JSON object');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RequestError('InvalidJson', ERRORS.InvalidJson.message);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestError('InvalidJson', ERRORS.InvalidJson.message);
  }
  return body as Record<string, unknown>;
}

/**
 * [protocol §3] The device request router: maps a request topic to its handler, validates the payload, and turns
 * every outcome (including bad input and store failures) into an accepted or rejected reply for the requester.
 */
export function createDeviceRouter(deps: ServiceDeps, options: { rateLimit?: RateLimit } = {}): DeviceRouter {
  const { topics, log } = deps;
  // A token bucket per thing.
  const limiter = createRateLimiter(options.rateLimit ?? DEFAULT_DEVICE_RATE_LIMIT);

  const encode = (topic: string, body: object): DeviceReply => ({
    topic,
    payload: Buffer.from(JSON.stringify(body)),
  });

  const count = (operation: Operation, outcome: DeviceRequestOutcome, startedAt: number) =>
    deps.metrics?.deviceRequest('mqtt', operation, outcome, (performance.now() - startedAt) / 1000);

  return {
    inspect(topic) {
      const kind = topics.parse(topic)?.kind;
      return kind === 'request' || kind === 'invalid' ? ANSWER : FORWARD;
    },

    isReplyTopic(topic) {
      return topics.parse(topic)?.kind === 'reply';
    },

    async handle(topic, payload) {
      const parsed = topics.parse(topic);
      if (parsed?.kind !== 'request') {
        const reason = parsed?.kind === 'invalid' ? ` (${parsed.reason})` : '';
        return encode(
          topics.rejected(topic),
          rejectedPayload('InvalidTopic', `${ERRORS.InvalidTopic.message}${reason}`, undefined, deps.clock()),
        );
      }
      const { operation } = parsed;
      const startedAt = performance.now();
      let clientToken: string | undefined;
      try {
        const body = parsePayload(payload);
        if (typeof body.clientToken === 'string') clientToken = body.clientToken;
        if (!limiter.take(parsed.thingName))
          throw new RequestError('RequestThrottled', ERRORS.Throttled.message);
        const { handler, validate } = HANDLERS[operation];
        if (!validate(body))
          throw new RequestError('InvalidRequest', describeValidationError(validate.errors));
        const result = await handler(deps, {
          thingName: parsed.thingName,
          jobId: parsed.jobId,
          body: body as never,
        });
        const accepted: Record<string, unknown> = {};
        if (clientToken !== undefined) accepted.clientToken = clientToken;
        accepted.timestamp = epochSeconds(deps.clock());
        count(operation, 'accepted', startedAt);
        return encode(topics.accepted(topic), Object.assign(accepted, result));
      } catch (err) {
        const now = deps.clock();
        if (err instanceof RequestError) {
          count(operation, err.code, startedAt);
          return encode(topics.rejected(topic), rejectedPayload(err.code, err.message, clientToken, now));
        }
        if (isFleetJobsError(err)) {
          if (err.entry.statusCode >= 500) log.error({ err, topic }, 'device request failed');
          count(operation, err.entry.mqttCode, startedAt);
          const state = err.executionState === undefined ? undefined : toExecutionState(err.executionState);
          return encode(
            topics.rejected(topic),
            rejectedPayload(err.entry.mqttCode, err.message, clientToken, now, state),
          );
        }
        log.error({ err, topic }, 'device request failed');
        count(operation, 'InternalError', startedAt);
        return encode(
          topics.rejected(topic),
          rejectedPayload('InternalError', ERRORS.Internal.message, clientToken, now),
        );
      }
    },
  };
}
