/**
 * External-broker mode (MQTT_URL): no embedded broker. fleetjobs connects to Mosquitto, EMQX, HiveMQ or VerneMQ
 * as a privileged client and takes device requests through a shared subscription (`$share/fleetjobs/<filter>`),
 * so several instances share the load; replies and notifications are published through the same client. The
 * external broker's ACL confines each thing to its own topics (see mosquitto.conf), so a reply published on a
 * thing's reply topic reaches that thing only.
 *
 * `?share=<group>` on MQTT_URL names the shared-subscription group (default `fleetjobs`); `?share=none`
 * subscribes without sharing, for one instance on a broker whose shared subscriptions skip topics that start
 * with `$`: Mosquitto 2.0.11 never delivers `$aws/...` to `$share/<group>/$aws/...` (checked with
 * mosquitto_sub/mosquitto_pub), so with the default `$aws/things/{thingName}/jobs` root run a single instance
 * with `share=none` on it, or use a root without `$`, or EMQX/HiveMQ/VerneMQ.
 *
 * Such a broker accepts the shared subscription and then delivers nothing, so start() proves delivery: it
 * subscribes `$share/<group>/<probe topic>` (a shared subscription of this instance alone, as the filter is
 * unique) and publishes to the probe topic, a reply-shaped topic under the jobs root that no instance answers.
 * Without delivery, the only instance of a store (PGlite) falls back to a plain subscription with a warning;
 * otherwise start() fails with one line naming MQTT_URL and `?share=none`.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Broker, BrokerReply } from './index.js';

export interface ExternalBrokerOptions {
  url: string;
  /** The filter matching every device topic (the jobs root with a thing wildcard). */
  filter: string;
  /** Decides which received messages are requests; only those are answered (replies and events echo back). */
  router: {
    inspect(topic: string): { action: string };
    handle(topic: string, payload: Buffer): Promise<BrokerReply>;
  };
  log: Logger;
  username?: string;
  password?: string;
  /** A topic the filter matches and the router ignores, unique to this instance: the delivery probe. */
  probeTopic: string;
  /** True when no other instance can share the store (PGlite): a plain subscription is then safe. */
  singleInstance: boolean;
  /** How long the probe may take to come back (default 2 s). */
  probeTimeoutMs?: number;
}

const DEFAULT_PROBE_TIMEOUT_MS = 2000;

export function createExternalBroker(options: ExternalBrokerOptions): Broker {
  const { router, log } = options;
  let client: MqttClient | undefined;
  const url = new URL(options.url);
  const share = url.searchParams.get('share') ?? 'fleetjobs';
  url.search = '';

  const publish = (topic: string, payload: Buffer | string, qos: 0 | 1): Promise<void> =>
    new Promise((resolve, reject) => {
      if (client === undefined) return reject(new Error('the external broker client is not connected'));
      client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve()));
    });

  return {
    async start() {
      client = await mqtt.connectAsync(url.toString(), {
        protocolVersion: 5,
        clean: true,
        reconnectPeriod: 1000,
        ...(options.username !== undefined ? { username: options.username } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
      });
      client.on('error', (err) => log.warn({ err: err.message }, 'external broker client error'));
      let probed: (() => void) | undefined;
      client.on('message', (topic, payload, packet) => {
        if (topic === options.probeTopic) return probed?.();
        if (router.inspect(topic).action !== 'answer') return;
        const qos = packet.qos >= 1 ? 1 : 0;
        router
          .handle(topic, payload)
          .then((reply) => publish(reply.topic, reply.payload, qos))
          .catch((err: unknown) => log.warn({ err, topic }, 'reply not published to the external broker'));
      });
      const subscribe = async (filter: string) => {
        const granted = await (client as MqttClient).subscribeAsync(filter, { qos: 1 });
        if (granted.some((g) => g.qos > 2)) {
          throw new Error(
            `the external broker refused the subscription ${filter}; check MQTT_URL and its ACL`,
          );
        }
      };
      if (share === 'none') {
        await subscribe(options.filter);
        return {};
      }
      const filter = `$share/${share}/${options.filter}`;
      await subscribe(filter);
      const probeFilter = `$share/${share}/${options.probeTopic}`;
      await subscribe(probeFilter);
      const delivered = await new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => resolve(false), options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
        probed = () => {
          clearTimeout(timer);
          resolve(true);
        };
        publish(options.probeTopic, '{}', 1).catch((err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        });
      });
      probed = undefined;
      await client.unsubscribeAsync(probeFilter);
      if (delivered) return {};
      if (!options.singleInstance) {
        throw new Error(
          `the broker of MQTT_URL delivers nothing to the shared subscription ${filter} (Mosquitto skips $ topics in $share): run one instance with MQTT_URL=...?share=none, or use a JOBS_TOPIC_ROOT without $ or a broker that shares them`,
        );
      }
      await client.unsubscribeAsync(filter);
      await subscribe(options.filter);
      log.warn(
        { filter: options.filter },
        `the broker of MQTT_URL delivers nothing to the shared subscription ${filter}; subscribed without sharing, as this is the only instance of its store (add ?share=none to MQTT_URL to say so)`,
      );
      return {};
    },
    async close() {
      await client?.endAsync();
      client = undefined;
    },
    publish,
    connected: () => client?.connected === true,
  };
}
