import { isValidJobId, isValidThingName } from './limits.js';

/** [protocol §3] The default root mirrors AWS IoT so that AWS device SDKs work unmodified. */
export const DEFAULT_TOPIC_ROOT = '$aws/things/{thingName}/jobs';
const PLACEHOLDER = '{thingName}';

export type Operation =
  'GetPendingJobExecutions' | 'StartNextPendingJobExecution' | 'DescribeJobExecution' | 'UpdateJobExecution';

/** Read-only: `parse` hands the same object to every caller that asks about the same topic in a row. */
export type ParsedTopic =
  /** A request the service answers. */
  | {
      readonly kind: 'request';
      readonly operation: Operation;
      readonly thingName: string;
      readonly jobId?: string;
      readonly requestTopic: string;
    }
  /** A reply or event topic: the service publishes there, devices may only subscribe. */
  | { readonly kind: 'reply' | 'event'; readonly thingName: string }
  /** Under the root of a thing, but no operation: answered with InvalidTopic on `{topic}/rejected`. */
  | { readonly kind: 'invalid'; readonly thingName: string; readonly reason: string };

export interface TopicScheme {
  readonly template: string;
  root(thingName: string): string;
  request(thingName: string, operation: Operation, jobId?: string): string;
  accepted(requestTopic: string): string;
  rejected(requestTopic: string): string;
  notify(thingName: string): string;
  notifyNext(thingName: string): string;
  /** The filter that matches every topic of every thing, for a server-side subscription. */
  wildcard(): string;
  /** The filter for every topic of one thing. */
  thingFilter(thingName: string): string;
  parse(topic: string): ParsedTopic | undefined;
}

export function validateTopicRoot(template: string): string | undefined {
  const at = template.indexOf(PLACEHOLDER);
  if (at < 0) return `must contain ${PLACEHOLDER}`;
  if (template.indexOf(PLACEHOLDER, at + 1) >= 0) return `must contain ${PLACEHOLDER} once`;
  if (/[+#]/.test(template)) return 'must not contain the MQTT wildcards + or #';
  if (template.endsWith('/') || template.startsWith('/')) return 'must not start or end with /';
  const before = template.slice(0, at);
  const after = template.slice(at + PLACEHOLDER.length);
  if ((before !== '' && !before.endsWith('/')) || (after !== '' && !after.startsWith('/'))) {
    return `${PLACEHOLDER} must be a whole topic level`;
  }
  return undefined;
}

export function createTopicScheme(template: string = DEFAULT_TOPIC_ROOT): TopicScheme {
  const problem = validateTopicRoot(template);
  if (problem) throw new Error(`JOBS_TOPIC_ROOT ${problem}`);
  const at = template.indexOf(PLACEHOLDER);
  const prefix = template.slice(0, at);
  const suffix = template.slice(at + PLACEHOLDER.length);
  const root = (thingName: string) => `${prefix}${thingName}${suffix}`;

  const request = (thingName: string, operation: Operation, jobId?: string): string => {
    const r = root(thingName);
    switch (operation) {
      case 'GetPendingJobExecutions':
        return `${r}/get`;
      case 'StartNextPendingJobExecution':
        return `${r}/start-next`;
      case 'DescribeJobExecution':
        return `${r}/${jobId ?? '$next'}/get`;
      case 'UpdateJobExecution':
        return `${r}/${jobId}/update`;
    }
  };

  const parseTopic = (topic: string): ParsedTopic | undefined => {
    if (!topic.startsWith(prefix)) return undefined;
    const rest = topic.slice(prefix.length);
    const slash = rest.indexOf('/');
    const thingName = slash < 0 ? rest : rest.slice(0, slash);
    const afterThing = slash < 0 ? '' : rest.slice(slash);
    if (!afterThing.startsWith(suffix) || !isValidThingName(thingName)) return undefined;
    const tail = afterThing.slice(suffix.length);
    if (tail === '') return { kind: 'invalid', thingName, reason: 'the topic names no operation' };
    if (!tail.startsWith('/')) return undefined;
    const parts = tail.slice(1).split('/');
    const last = parts[parts.length - 1];
    if (last === 'accepted' || last === 'rejected') return { kind: 'reply', thingName };
    if (parts.length === 1 && (parts[0] === 'notify' || parts[0] === 'notify-next'))
      return { kind: 'event', thingName };
    if (parts.length === 1 && parts[0] === 'get') {
      return { kind: 'request', operation: 'GetPendingJobExecutions', thingName, requestTopic: topic };
    }
    if (parts.length === 1 && parts[0] === 'start-next') {
      return { kind: 'request', operation: 'StartNextPendingJobExecution', thingName, requestTopic: topic };
    }
    if (parts.length === 2 && (parts[1] === 'get' || parts[1] === 'update')) {
      const jobId = parts[0] ?? '';
      if (parts[1] === 'get' && (jobId === '$next' || isValidJobId(jobId))) {
        return { kind: 'request', operation: 'DescribeJobExecution', thingName, jobId, requestTopic: topic };
      }
      if (parts[1] === 'update' && isValidJobId(jobId)) {
        return { kind: 'request', operation: 'UpdateJobExecution', thingName, jobId, requestTopic: topic };
      }
      return { kind: 'invalid', thingName, reason: `${jobId} is not a valid jobId` };
    }
    return { kind: 'invalid', thingName, reason: `no jobs operation is published to ${topic}` };
  };
  // The broker asks about each request topic several times in a row (topic ACL, router inspect, router handle):
  // the last answer is kept so that a publish is parsed once.
  let lastTopic: string | undefined;
  let lastParsed: ParsedTopic | undefined;
  const parse = (topic: string): ParsedTopic | undefined => {
    if (topic !== lastTopic) {
      lastParsed = parseTopic(topic);
      lastTopic = topic;
    }
    return lastParsed;
  };

  return {
    template,
    root,
    request,
    accepted: (requestTopic) => `${requestTopic}/accepted`,
    rejected: (requestTopic) => `${requestTopic}/rejected`,
    notify: (thingName) => `${root(thingName)}/notify`,
    notifyNext: (thingName) => `${root(thingName)}/notify-next`,
    wildcard: () => `${prefix}+${suffix}/#`,
    thingFilter: (thingName) => `${root(thingName)}/#`,
    parse,
  };
}

/** [protocol §6] Fleet event topics, open to operator clients only. */
export const EVENTS_ROOT = '$aws/events';
export function jobEventTopic(jobId: string, event: string): string {
  return `${EVENTS_ROOT}/job/${jobId}/${event}`;
}
