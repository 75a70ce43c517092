/**
 * The Aedes authorize hooks, which carry the broker's whole topic policy: what a client may subscribe to, what
 * happens to its publish (forwarded, refused, or taken as a request and answered to it alone), and which
 * packets may reach a subscriber (never a reply, except the one written to its requester).
 *
 * Requests are taken in `authorizePublish`, not through `broker.subscribe`: a reply published from a
 * subscription handler before its delivery is acknowledged wedges Aedes beyond `concurrency` in-flight
 * requests (protocol fact 2).
 */
import type { AedesOptions } from 'aedes';
import type { Logger } from 'pino';
import type { ClientRegistry } from './clients.js';
import { HeldWrites, type DirectWrites } from './delivery.js';
import type { BrokerHooks } from './index.js';

export function createAuthorizeHooks(
  hooks: BrokerHooks,
  clients: ClientRegistry,
  directWrites: DirectWrites,
  log: Logger,
): Pick<AedesOptions, 'authorizeSubscribe' | 'authorizePublish' | 'authorizeForward'> {
  return {
    authorizeSubscribe(client, sub, done) {
      if (hooks.authorizeSubscribe && !hooks.authorizeSubscribe(clients.view(client), sub.topic)) {
        return done(new Error(`subscription to ${sub.topic} refused`));
      }
      done(null, sub);
    },
    authorizePublish(client, packet, done) {
      if (client === null) return done(new Error('publish without a client'));
      if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS topics are reserved'));
      const who = clients.view(client);
      const decision = hooks.inspectPublish(who, packet.topic);
      if (decision === 'refuse') {
        log.warn({ clientId: client.id, topic: packet.topic }, 'publish refused; disconnecting the client');
        return done(new Error(`publish to ${packet.topic} refused`));
      }
      if (decision === 'answer') {
        // Acknowledge first (done below, which PUBACKs), answer when the service is done.
        const qos = packet.qos >= 1 ? 1 : 0;
        const held = new HeldWrites(client.conn);
        hooks.answer(who, packet.topic, packet.payload as Buffer).then(
          (reply) => {
            if (reply === undefined || client.closed) return HeldWrites.release(held);
            directWrites.write(client, reply, qos, (err) =>
              log.debug({ err, clientId: client.id }, 'reply not delivered'),
            );
            held.releaseAfterReply();
          },
          (err: unknown) => {
            HeldWrites.release(held);
            log.error({ err, topic: packet.topic }, 'answer hook failed');
          },
        );
      }
      done(null);
    },
    authorizeForward(_client, packet) {
      // A reply on its way to its requester is recognised by its payload alone, before any topic is parsed.
      if (directWrites.has(packet.payload)) return packet;
      return hooks.isPrivateTopic(packet.topic) ? null : packet;
    },
  };
}
