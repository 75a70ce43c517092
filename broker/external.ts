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
    inspect(topic: string, identity: undefined): { action: string };
    handle(topic: string, payload: Buffer): Promise<BrokerReply>;
  };
  log: Logger;
  username?: string;
  password?: string;
}

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
      client.on('message', (topic, payload, packet) => {
        if (router.inspect(topic, undefined).action !== 'answer') return;
        const qos = packet.qos >= 1 ? 1 : 0;
        router
          .handle(topic, payload)
          .then((reply) => publish(reply.topic, reply.payload, qos))
          .catch((err: unknown) => log.warn({ err, topic }, 'reply not published to the external broker'));
      });
      const filter = share === 'none' ? options.filter : `$share/${share}/${options.filter}`;
      const granted = await client.subscribeAsync(filter, { qos: 1 });
      if (granted.some((g) => g.qos > 2)) {
        throw new Error(`the external broker refused the subscription ${filter}; check MQTT_URL and its ACL`);
      }
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
