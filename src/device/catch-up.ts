import { isValidThingName } from '../protocol/limits.js';
import type { NotifyEvent } from '../protocol/messages.js';
import { epochSeconds } from '../protocol/messages.js';
import { describeExecution } from '../service/describe-execution.js';
import type { ServiceDeps } from '../service/deps.js';
import { getPendingExecutions } from '../service/get-pending-executions.js';
import { notifyNextPayload, toSummary } from './payloads.js';
import type { DeviceReply } from './router.js';

/**
 * Catch-up for a device that asked to keep its MQTT session (clean=false) and found it not present at CONNECT:
 * never made, or lost by the broker (a single node's sessions live in its memory and die with it). What was
 * queued died with the session, so the service re-derives it from the store, as of now, for the device alone:
 * - at CONNACK, its notify-next, for a device that assumes its subscriptions survived and never subscribes again;
 * - when it subscribes to a filter matching its notify or notify-next topic, the current notify (its pending
 *   list) and notify-next (its head) for that topic.
 * Nothing is sent while nothing is pending. A device may thus get its current notify-next twice (at CONNACK and
 * again at SUBSCRIBE); both name the same execution. A clean session is promised nothing from before it
 * subscribes, as in MQTT, and gets no catch-up.
 */
export interface CatchUp {
  /**
   * `identity`: the authenticated thing name (with AUTH_MODE=off the client id stands in for it at CONNACK);
   * `filter`: what the device subscribed to, undefined at CONNACK.
   */
  messages(
    identity: string | undefined,
    clientId: string,
    filter: string | undefined,
  ): Promise<DeviceReply[]>;
}

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

export function createCatchUp(deps: ServiceDeps): CatchUp {
  const { topics } = deps;

  const notifyNext = async (thingName: string): Promise<DeviceReply[]> => {
    const head = await describeExecution(deps, { thingName, jobId: '$next' });
    if (head === undefined) return [];
    const now = deps.clock();
    return [
      {
        topic: topics.notifyNext(thingName),
        payload: Buffer.from(JSON.stringify(notifyNextPayload(head, now, now))),
      },
    ];
  };

  const notify = async (thingName: string): Promise<DeviceReply[]> => {
    const pending = await getPendingExecutions(deps, thingName);
    if (pending.inProgress.length === 0 && pending.queued.length === 0) return [];
    const jobs: NotifyEvent['jobs'] = {};
    if (pending.inProgress.length > 0) jobs.IN_PROGRESS = pending.inProgress.map(toSummary);
    if (pending.queued.length > 0) jobs.QUEUED = pending.queued.map(toSummary);
    const body: NotifyEvent = { timestamp: epochSeconds(deps.clock()), jobs };
    return [{ topic: topics.notify(thingName), payload: Buffer.from(JSON.stringify(body)) }];
  };

  return {
    async messages(identity, clientId, filter) {
      if (filter === undefined) {
        const thingName = identity ?? clientId;
        return isValidThingName(thingName) ? notifyNext(thingName) : [];
      }
      // The thing a filter is about is the one named in its thing level; wildcard things catch up on nothing.
      const thingName = topics.parse(filter)?.thingName;
      if (thingName === undefined || (identity !== undefined && thingName !== identity)) return [];
      const out: DeviceReply[] = [];
      if (matches(filter, topics.notify(thingName))) out.push(...(await notify(thingName)));
      if (matches(filter, topics.notifyNext(thingName))) out.push(...(await notifyNext(thingName)));
      return out;
    },
  };
}
