/**
 * [protocol §8] Every limit fleetjobs enforces, named once. docs/limits.md lists them; a unit test keeps the two in
 * sync.
 */
export const LIMITS = {
  /** Job document size in characters (AWS: 32,768). */
  MAX_JOB_DOCUMENT_CHARS: 32_768,
  /** statusDetails pairs on one execution. */
  MAX_STATUS_DETAILS_PAIRS: 10,
  /** statusDetails key length; keys match STATUS_DETAILS_KEY_PATTERN. */
  MAX_STATUS_DETAILS_KEY_CHARS: 128,
  /** statusDetails value length; values are printable, 1 character at least. */
  MAX_STATUS_DETAILS_VALUE_CHARS: 1024,
  MAX_JOB_ID_CHARS: 64,
  MAX_THING_NAME_CHARS: 128,
  MAX_THING_GROUP_NAME_CHARS: 128,
  MAX_CLIENT_TOKEN_CHARS: 64,
  /** MQTT payload size in bytes (AWS IoT Core: 128 KB). */
  MAX_MQTT_PAYLOAD_BYTES: 131_072,
  /** HTTP request body size in bytes: a 32 KB document escaped in JSON plus configuration. */
  MAX_HTTP_BODY_BYTES: 262_144,
  MAX_DESCRIPTION_CHARS: 2028,
  MAX_COMMENT_CHARS: 2028,
  MAX_REASON_CODE_CHARS: 128,
  /** Entries in notify lists and GetPendingJobExecutions lists. */
  MAX_PENDING_LIST: 10,
  /** Targets named in one CreateJob or AssociateTargetsWithJob. */
  MAX_TARGETS_PER_JOB: 100,
  MIN_TIMEOUT_MINUTES: 1,
  MAX_TIMEOUT_MINUTES: 10_080,
  MAX_RETRIES_TOTAL: 10,
  MIN_LIST_RESULTS: 1,
  MAX_LIST_RESULTS: 250,
  DEFAULT_LIST_RESULTS: 50,
  MAX_DOCUMENT_PARAMETER_VALUE_CHARS: 30_720,
  MAX_SUBSTITUTIONS_PER_DOCUMENT: 10,
  /** Whole MQTT packet in bytes: a full payload plus topic and headers; a larger packet closes the connection. */
  MAX_MQTT_PACKET_BYTES: 132_096,
  /**
   * Device requests per second per thing, sustained; more are answered with RequestThrottled. Generous, so a
   * device that pipelines requests is never slowed; DEVICE_RATE_LIMIT lowers it.
   */
  DEVICE_REQUESTS_PER_SECOND: 1000,
  /** Device requests a thing may send at once before the per-second rate applies. */
  DEVICE_REQUEST_BURST: 2000,
  /** Operator REST requests per second per key (or per address without a key); more get 429 (OPERATOR_RATE_LIMIT). */
  OPERATOR_REQUESTS_PER_SECOND: 100,
  OPERATOR_REQUEST_BURST: 200,
  /** A SigV4 request dated further than this from the server clock is refused (replay window). */
  SIGV4_MAX_CLOCK_SKEW_SECONDS: 300,
  /** ACTIVE secrets one thing may hold at once: two, so a rotation can overlap. */
  MAX_ACTIVE_CREDENTIALS_PER_THING: 2,
  /** Length of a device password or operator secret accepted for checking; longer is refused unhashed. */
  MAX_SECRET_CHARS: 256,
  /** fleetjobs extension: a job's priority lies in [-MAX_PRIORITY, MAX_PRIORITY]; 0 without one. */
  MAX_PRIORITY: 1000,
  /** A job schedule's id: short enough that `{scheduleId}-{YYYYMMDDTHHMMZ}` is a valid jobId. */
  MAX_SCHEDULE_ID_CHARS: 49,
} as const;

export const JOB_ID_PATTERN = '^[a-zA-Z0-9_-]{1,64}$';
export const THING_NAME_PATTERN = '^[a-zA-Z0-9:_-]{1,128}$';
export const THING_GROUP_NAME_PATTERN = '^[a-zA-Z0-9:_-]{1,128}$';
export const STATUS_DETAILS_KEY_PATTERN = '^[a-zA-Z0-9:_-]{1,128}$';
/** 1–1024 characters, none of them a Unicode control, format, surrogate or unassigned character. */
export const STATUS_DETAILS_VALUE_PATTERN = '^[^\\p{C}]{1,1024}$';
export const REASON_CODE_PATTERN = '^[\\p{Lu}\\p{Nd}_]{1,128}$';
export const PRINTABLE_PATTERN = '^[^\\p{C}]*$';

const jobIdRe = new RegExp(JOB_ID_PATTERN);
const thingNameRe = new RegExp(THING_NAME_PATTERN);

export function isValidJobId(value: string): boolean {
  return jobIdRe.test(value);
}

export function isValidThingName(value: string): boolean {
  return thingNameRe.test(value);
}
