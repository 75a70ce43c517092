import { readdir } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { FastifyPluginAsync } from 'fastify';
import { EXECUTION_STATUSES, JOB_STATUSES } from '../../protocol/states.js';
import { countExecutionsByStatus, countJobsByStatus, selectOutboxBacklog } from '../../store/metrics.js';
import type { Db } from '../../store/db.js';
import type { FleetMetrics } from '../../service/metrics.js';

/**
 * GET /metrics in the Prometheus text exposition format (version 0.0.4), written by hand rather than with
 * prom-client: fleetjobs exposes a dozen counters and gauges, which takes less code than adapting a registry,
 * and keeps a dependency out of a package that ships to small boxes.
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

type Labels = Record<string, string>;
type Sample = { labels?: Labels; value: number };

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function family(name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const s of samples) {
    const labels = s.labels
      ? `{${Object.entries(s.labels)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',')}}`
      : '';
    lines.push(`${name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
  }
  return lines.join('\n');
}

/** Every status appears, with 0 when there is none, so that rate() and alerts see a series from the start. */
function byStatus(statuses: readonly string[], rows: { status: string; n: number }[]): Sample[] {
  return statuses.map((status) => ({
    labels: { status },
    value: rows.find((r) => r.status === status)?.n ?? 0,
  }));
}

async function openFds(): Promise<number | undefined> {
  try {
    return (await readdir('/proc/self/fd')).length;
  } catch {
    return undefined; // not Linux: the metric is left out
  }
}

export function metricsRoutes(deps: MetricsDeps): FastifyPluginAsync {
  return async (app) => {
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    app.addHook('onClose', async () => loopDelay.disable());
    const startTime = Math.round(Date.now() / 1000 - process.uptime());
    type Counts = Promise<{ status: string; n: number }[]>;
    let counted: { at: number; rows: Counts } | undefined;
    const executionCounts = (): Counts => {
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
      const out: string[] = [];
      try {
        const [jobs, executions, outbox] = await Promise.all([
          countJobsByStatus(deps.db),
          executionCounts(),
          selectOutboxBacklog(deps.db, deps.clock()),
        ]);
        out.push(
          family('fleetjobs_database_up', 'gauge', 'Whether the store answered this scrape.', [{ value: 1 }]),
          family('fleetjobs_jobs', 'gauge', 'Jobs by status.', byStatus(JOB_STATUSES, jobs)),
          family(
            'fleetjobs_job_executions',
            'gauge',
            'Job executions by status, recounted at most every 30 s.',
            byStatus(EXECUTION_STATUSES, executions),
          ),
          family('fleetjobs_outbox_backlog', 'gauge', 'Notifications committed but not yet published.', [
            { value: outbox.n },
          ]),
          family(
            'fleetjobs_outbox_oldest_age_seconds',
            'gauge',
            'Age of the oldest unpublished notification (0 when none).',
            [{ value: outbox.oldestAgeSeconds }],
          ),
        );
      } catch (err) {
        request.log.warn({ err }, 'metrics: the store did not answer');
        out.push(
          family('fleetjobs_database_up', 'gauge', 'Whether the store answered this scrape.', [{ value: 0 }]),
        );
      }
      out.push(
        family(
          'fleetjobs_device_requests_total',
          'counter',
          'Device requests by transport, operation and outcome (accepted or the error code).',
          (deps.metrics?.deviceRequests() ?? []).map((r) => ({
            labels: { transport: r.transport, operation: r.operation, outcome: r.outcome },
            value: r.n,
          })),
        ),
      );
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      out.push(
        family('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [
          { value: cpu.user / 1e6 },
        ]),
        family('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [
          { value: cpu.system / 1e6 },
        ]),
        family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [
          { value: (cpu.user + cpu.system) / 1e6 },
        ]),
        family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [
          { value: mem.rss },
        ]),
        family(
          'process_start_time_seconds',
          'gauge',
          'Start time of the process since the epoch in seconds.',
          [{ value: startTime }],
        ),
        family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap used in bytes.', [{ value: mem.heapUsed }]),
        family('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap allocated in bytes.', [
          { value: mem.heapTotal },
        ]),
        family(
          'nodejs_eventloop_delay_seconds',
          'gauge',
          'Event-loop delay percentiles since the previous scrape.',
          [50, 99].map((p) => ({
            labels: { quantile: String(p / 100) },
            value: loopDelay.percentile(p) / 1e9,
          })),
        ),
        family(
          'nodejs_eventloop_delay_max_seconds',
          'gauge',
          'Largest event-loop delay since the previous scrape.',
          [{ value: loopDelay.max / 1e9 }],
        ),
      );
      loopDelay.reset();
      const fds = await openFds();
      if (fds !== undefined) {
        out.push(family('process_open_fds', 'gauge', 'Number of open file descriptors.', [{ value: fds }]));
      }
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(out.join('\n') + '\n');
    });
  };
}
