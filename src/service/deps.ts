import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import type { ArnContext } from '../protocol/arns.js';
import type { TopicScheme } from '../protocol/topics.js';
import type { FleetMetrics } from './metrics.js';

/** What every use-case needs; built once by createFleetJobs and handed down. */
export interface ServiceDeps {
  db: Db;
  /** The service clock; tests pass their own. */
  clock: () => Date;
  log: Logger;
  arn: ArnContext;
  topics: TopicScheme;
  /** Called after a transaction that wrote outbox rows has committed, so the dispatcher publishes at once. */
  outboxWritten: () => void;
  /** Counters and histograms for GET /metrics (device requests, batch transactions, errors by code). */
  metrics?: FleetMetrics;
}
