import { performance } from 'node:perf_hooks';
import type { FastifyPluginAsync } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import { EXECUTION_STATUSES, JOB_STATUSES } from '../../protocol/states.js';
import { countExecutionsByStatus, countJobsByStatus, selectOutboxBacklog } from '../../store/metrics.js';
import type { Db } from '../../store/db.js';
import { processMetrics, type FleetMetrics } from '../../service/metrics.js';

/**
 * GET /metrics in the Prometheus text exposition format (version 0.0.4), by prom-client: the store's counts,
 * read at each scrape, then the server's counters and histograms, then the process metrics.
 */
export interface MetricsDeps {
  db: Db;
  clock: () => Date;
  metrics?: FleetMetrics | undefined;
}

/**
 * Counting executions by status scans the executions table (0.2 to 0.5 s per million rows here, whatever the
 * index), so it runs at most this often per process, however many scrapers there are; jobs and the outbox are
 * small and counted at every scrape.
 */
export const EXECUTION_RECOUNT_MS = 30_000;

type Counts = { status: string; n: number }[];

/** Every status gets a sample, 0 when there is none, so that rate() and alerts see a series from the start. */
function setByStatus(gauge: Gauge<'status'>, statuses: readonly string[], rows: Counts): void {
  for (const status of statuses) gauge.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
}

export function metricsRoutes(deps: MetricsDeps): FastifyPluginAsync {
  return async (app) => {
    // Started with the server, so that the first scrape already has event-loop samples.
    const processRegistry = processMetrics();
    const store = new Registry();
    const up = new Gauge({
      name: 'fleetjobs_database_up',
      help: 'Whether the store answered this scrape.',
      registers: [store],
    });
    const jobs = new Gauge({
      name: 'fleetjobs_jobs',
      help: 'Jobs by status.',
      labelNames: ['status'] as const,
      registers: [store],
    });
    const executions = new Gauge({
      name: 'fleetjobs_job_executions',
      help: 'Job executions by status, recounted at most every 30 s.',
      labelNames: ['status'] as const,
      registers: [store],
    });
    const backlog = new Gauge({
      name: 'fleetjobs_outbox_backlog',
      help: 'Notifications committed but not yet published.',
      registers: [store],
    });
    const oldest = new Gauge({
      name: 'fleetjobs_outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished notification (0 when none).',
      registers: [store],
    });

    let counted: { at: number; rows: Promise<Counts> } | undefined;
    const executionCounts = (): Promise<Counts> => {
      if (counted === undefined || performance.now() - counted.at > EXECUTION_RECOUNT_MS) {
        const rows = countExecutionsByStatus(deps.db);
        counted = { at: performance.now(), rows };
        // A failed count is not kept: the next scrape tries again.
        rows.catch(() => {
          if (counted?.rows === rows) counted = undefined;
        });
      }
      return counted.rows;
    };

    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      let storeText: Promise<string>;
      try {
        const [jobRows, executionRows, outbox] = await Promise.all([
          countJobsByStatus(deps.db),
          executionCounts(),
          selectOutboxBacklog(deps.db, deps.clock()),
        ]);
        up.set(1);
        setByStatus(jobs, JOB_STATUSES, jobRows);
        setByStatus(executions, EXECUTION_STATUSES, executionRows);
        backlog.set(outbox.n);
        oldest.set(outbox.oldestAgeSeconds);
        storeText = store.metrics();
      } catch (err) {
        request.log.warn({ err }, 'metrics: the store did not answer');
        up.set(0);
        // Counts from an earlier scrape would read as current: only the store's status is reported.
        storeText = store.getSingleMetricAsString('fleetjobs_database_up').then((t) => `${t}\n`);
      }
      const others = [...(deps.metrics ? [deps.metrics.registry] : []), processRegistry];
      const text = [await storeText, ...(await Promise.all(others.map((r) => r.metrics())))].join('');
      return reply.type(store.contentType).send(text);
    });
  };
}
