/**
 * [protocol §3] Topic ACL for the embedded broker. A device (a client whose identity is a thing name) may subscribe
 * only to filters inside its own `{root}` and publish only its own request topics; an operator client (identity
 * OPERATOR_PREFIX + access key id) may also read fleet events and notifications, but publishes no requests.
 * `$SYS` and `$aws/events` are closed to devices. The thing name always comes from the identity, never from the
 * topic. Reply and notification topics are the service's alone, for every client. With AUTH_MODE=off (loopback
 * only) clients have no identity and the ACL lets every other publish and subscription by.
 *
 * This is the one publish rule: the device router only tells requests from other topics.
 */
import type { TopicScheme } from '../src/protocol/topics.js';
import { EVENTS_ROOT } from '../src/protocol/topics.js';

/** Marks an authenticated operator client; `/` cannot occur in a thing name, so no thing can pose as one. */
export const OPERATOR_PREFIX = 'operator/';

export function isOperatorIdentity(identity: string | undefined): boolean {
  return identity !== undefined && identity.startsWith(OPERATOR_PREFIX);
}

export interface TopicAcl {
  /** May this client subscribe to this filter? */
  canSubscribe(identity: string | undefined, filter: string): boolean;
  /** May this client publish to this topic at all (the router still decides what a request topic means)? */
  canPublish(identity: string | undefined, topic: string): boolean;
}

/** Every topic a filter matches lies under `prefix/` when the filter starts with it literally. */
function filterWithin(filter: string, prefix: string): boolean {
  return filter.startsWith(`${prefix}/`);
}

export function createTopicAcl(topics: TopicScheme): TopicAcl {
  return {
    canSubscribe(identity, filter) {
      if (identity === undefined) return true;
      if (filter.startsWith('$share/') || filter.startsWith('$queue/')) return false;
      if (isOperatorIdentity(identity)) {
        if (filterWithin(filter, EVENTS_ROOT)) return true;
        // Operators may watch notifications, never other clients' replies (those are not fanned out anyway).
        // A `+` level (any thing) is checked as if it named one thing; `#` never matches only notifications.
        const parsed = topics.parse(filter.replace(/(^|\/)\+(?=\/|$)/g, '$1x'));
        return parsed !== undefined && parsed.kind === 'event';
      }
      return filterWithin(filter, topics.root(identity));
    },
    canPublish(identity, topic) {
      if (isOperatorIdentity(identity)) return false;
      const parsed = topics.parse(topic);
      if (parsed?.kind === 'reply' || parsed?.kind === 'event') return false;
      if (identity === undefined) return true;
      return parsed !== undefined && parsed.thingName === identity;
    },
  };
}
