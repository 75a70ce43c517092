import type { Operation } from '../protocol/topics.js';
import type { MqttErrorCode } from '../protocol/errors.js';

export type DeviceTransport = 'mqtt' | 'https';
/** `accepted`, or the device-plane error code the request was rejected with. */
export type DeviceRequestOutcome = 'accepted' | MqttErrorCode;

/**
 * In-process counters the device transports increment and GET /metrics reads. Label values come from closed
 * sets (transport, operation, outcome), so the number of series stays bounded whatever devices send.
 */
export interface FleetMetrics {
  deviceRequest(transport: DeviceTransport, operation: Operation, outcome: DeviceRequestOutcome): void;
  deviceRequests(): {
    transport: DeviceTransport;
    operation: Operation;
    outcome: DeviceRequestOutcome;
    n: number;
  }[];
}

export function createMetrics(): FleetMetrics {
  const counts = new Map<string, number>();
  return {
    deviceRequest(transport, operation, outcome) {
      const key = `${transport}\u0000${operation}\u0000${outcome}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    },
    deviceRequests() {
      return [...counts].map(([key, n]) => {
        const [transport, operation, outcome] = key.split('\u0000') as [
          DeviceTransport,
          Operation,
          DeviceRequestOutcome,
        ];
        return { transport, operation, outcome, n };
      });
    },
  };
}
