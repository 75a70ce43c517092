/**
 * How messages are written to clients: QoS 0 deliveries shaped (a stalled reader holds up no one, writes batched
 * per event-loop turn), and a request's connection corked until its reply is written.
 *
 * shapeQos0Deliveries replaces `deliver0`, a per-client property of Aedes that its type declarations leave out.
 * aedes is pinned to one exact version in package.json for this, and test/integration/broker-aedes-internals
 * fails on a version where the property is gone or no longer used for QoS 0 deliveries.
 */
import type { AedesPublishPacket, Client, PublishPacket } from 'aedes';
import type { Duplex } from 'node:stream';

/**
 * A request's connection corked from its arrival until its reply is written: a reply ready within the same
 * event-loop turn (a quick answer) leaves together with the PUBACK in one write, one syscall and one segment,
 * instead of two. A reply that is not ready by the next turn does not hold the PUBACK back any longer.
 * A class rather than closures: this runs on every request.
 */
export class HeldWrites {
  private corked = true;
  private alone: NodeJS.Immediate;

  constructor(private readonly conn: Duplex) {
    conn.cork();
    this.alone = setImmediate(HeldWrites.release, this);
  }

  static release(held: HeldWrites): void {
    if (!held.corked) return;
    held.corked = false;
    held.conn.uncork();
  }

  /** Aedes writes a reply in an immediate queued by `client.publish`; this one is queued after it. */
  releaseAfterReply(): void {
    if (!this.corked) return;
    clearImmediate(this.alone);
    this.alone = setImmediate(HeldWrites.release, this);
  }
}

/** Aedes' per-client QoS 0 delivery. */
type DeliverQos0 = (packet: AedesPublishPacket, done: () => void) => void;
const ignore = () => {};

/**
 * How QoS 0 messages reach a client, changed in two ways. Installed before the client can subscribe, which is when
 * Aedes takes the function for each subscription.
 *
 * 1. A stalled reader holds up no one. Aedes fans a message out to every subscriber before the message counts as
 *    done, with at most `concurrency` (100) messages in flight broker-wide, and a delivery is done only once the
 *    subscriber's socket takes the write: a subscriber that stops reading holds every message sent to it until
 *    drainTimeout ends it, and once 100 wait on it nothing moves for anybody (bench S7: every round trip stalled
 *    for the whole drainTimeout). A delivery is therefore done at once with its write left behind the socket's
 *    buffer, and a message for a client with more than `maxBytes` unflushed is dropped: QoS 0 promises at most
 *    once. A client that never reads again still ends at drainTimeout.
 * 2. Writes batched. Aedes writes each delivery in an immediate of its own, one syscall each. The connection is
 *    corked at a delivery and uncorked by an immediate queued after that delivery's write; deliveries made
 *    meanwhile (whose writes may come later) have it corked again for one more immediate. A subscriber of a busy
 *    topic thus gets each event-loop turn's messages in one write, and every write leaves within two turns.
 */
export function shapeQos0Deliveries(client: Client, maxBytes: number): void {
  const c = client as Client & { deliver0?: DeliverQos0 };
  const deliver = c.deliver0;
  if (typeof deliver !== 'function') {
    throw new Error('this aedes version has no client.deliver0; pin aedes to the version in package.json');
  }
  const conn = client.conn;
  let flushing = false;
  let deliveredSince = 0;
  // While corked, the socket's buffer holds the turn's writes too: what counts is what it left at the last flush.
  let unflushed = 0;
  const flush = () => {
    conn.uncork();
    unflushed = conn.writableLength;
    if (deliveredSince === 0) {
      flushing = false;
      return;
    }
    deliveredSince = 0;
    conn.cork();
    setImmediate(flush);
  };
  c.deliver0 = (packet, done) => {
    if ((flushing ? unflushed : conn.writableLength) <= maxBytes) {
      deliver(packet, ignore);
      if (flushing) deliveredSince++;
      else {
        flushing = true;
        conn.cork();
        setImmediate(flush);
      }
    }
    // Never synchronously: a done() within the emit recurses through every queued message (protocol fact 3).
    setImmediate(done);
  };
}

/**
 * Messages written to one client only, whether or not it subscribed, never through the broker's fan-out (so in
 * cluster mode they never cross Redis either): replies and catch-up. Their payloads are what authorizeForward lets
 * by on private topics.
 *
 * Aedes delivers a message to a client only if its brokerCounter is above the last one that client got with the
 * same brokerId (its dedupe of overlapping subscriptions). A direct write is quicker than a fan-out publish (one
 * persistence write, against the offline enqueue and, in cluster mode, a Redis round trip), so under the broker's
 * own id a reply overtaking a notify-next published just before it made Aedes drop that notify-next for good.
 * Direct writes therefore count under an id of their own; they all take the same path, so they reach a client in
 * their own counter order.
 */
export class DirectWrites {
  private readonly payloads = new WeakSet<Buffer>();
  private counter = 0;

  /** `brokerId`: unique to this broker; no ':' (aedes-persistence-redis splits its keys on it). */
  constructor(private readonly brokerId: string) {}

  has(payload: unknown): boolean {
    return Buffer.isBuffer(payload) && this.payloads.has(payload);
  }

  write(
    client: Client,
    message: { topic: string; payload: Buffer },
    qos: 0 | 1,
    onError: (err: Error) => void,
  ): void {
    this.payloads.add(message.payload);
    // Aedes' Packet keeps a brokerId and brokerCounter it is given.
    const packet: PublishPacket & { brokerId: string; brokerCounter: number } = {
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos,
      retain: false,
      dup: false,
      brokerId: this.brokerId,
      brokerCounter: ++this.counter,
    };
    client.publish(packet, (err) => {
      if (err) onError(err);
    });
  }
}
