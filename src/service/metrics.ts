import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Operation } from '../protocol/topics.js';
import type { MqttErrorCode } from '../protocol/errors.js';

export type DeviceTransport = 'mqtt' | 'https';
/** `accepted`, or the device-plane error code the request was rejected with. */
export type DeviceRequestOutcome = 'accepted' | MqttErrorCode;
/** Where an error was answered: the operator REST API, or a device request over MQTT or HTTPS. */
export type ErrorSurface = 'operator' | 'device-mqtt' | 'device-https';

/**
 * The instruments the transports and the device batcher feed, on one prom-client registry per server; GET /metrics
 * writes it. Label values come from closed sets (transport, operation, outcome, error name), so the number of
 * series stays bounded whatever clients send.
 */
export interface FleetMetrics {
  readonly registry: Registry;
  /** One device request answered; `seconds` from its arrival to its reply. */
  deviceRequest(
    transport: DeviceTransport,
    operation: Operation,
    outcome: DeviceRequestOutcome,
    seconds?: number,
  ): void;
  /** One device-write batch transaction (committed or not) and the writes it carried. */
  batchTransaction(seconds: number, writes: number): void;
  /** One error answered, by its AWS error name (HTTP) or device error code (MQTT). */
  errorAnswered(surface: ErrorSurface, code: string): void;
}

/** Sub-millisecond to seconds: a device request or a batch is a few database round trips. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500];

export function createMetrics(): FleetMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: 'fleetjobs_device_requests_total',
    help: 'Device requests by transport, operation and outcome (accepted or the error code).',
    labelNames: ['transport', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'fleetjobs_device_request_duration_seconds',
    help: 'Time from a device request to its reply, by transport and operation.',
    labelNames: ['transport', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchTime = new Histogram({
    name: 'fleetjobs_device_batch_transaction_seconds',
    help: 'Duration of each device-write batch transaction (start-next and update).',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'fleetjobs_device_batch_writes',
    help: 'Device writes per batch transaction.',
    buckets: BATCH_SIZE_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'fleetjobs_errors_total',
    help: 'Errors answered, by surface and code (x-amzn-ErrorType on HTTP, the rejected code on MQTT).',
    labelNames: ['surface', 'code'] as const,
    registers: [registry],
  });
  return {
    registry,
    deviceRequest(transport, operation, outcome, seconds) {
      requests.inc({ transport, operation, outcome });
      if (seconds !== undefined) latency.observe({ transport, operation }, seconds);
      // HTTPS errors are counted with the rest of that app's answers, by error name (installRequestLog).
      if (transport === 'mqtt' && outcome !== 'accepted')
        errors.inc({ surface: 'device-mqtt', code: outcome });
    },
    batchTransaction(seconds, writes) {
      batchTime.observe(seconds);
      batchSize.observe(writes);
    },
    errorAnswered(surface, code) {
      errors.inc({ surface, code });
    },
  };
}

let processRegistry: Registry | undefined;

/** prom-client defaults that are gauges named like counters, which `promtool check metrics` rejects. */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * Process metrics (CPU, memory, heap, event-loop lag, open file descriptors, GC): one set per process, however
 * many servers it runs, since each set samples the event loop on its own timer.
 */
export function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    for (const name of MISNAMED_DEFAULTS) processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}
