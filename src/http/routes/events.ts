import type { FastifyPluginAsync } from 'fastify';
import type { ServerResponse } from 'node:http';
import { selectEventsAfter, selectLastEventSeq } from '../../store/events.js';
import { sendError } from '../error-handler.js';
import type { ServiceDeps } from '../../service/deps.js';
import { isValidJobId } from '../../protocol/limits.js';
import { createJobProgressWatcher, type JobProgressWatcher } from '../job-progress.js';
import { tenantDb } from '../../store/db.js';
import { requestTenant } from '../tenant-scope.js';

export interface EventRoutesOptions {
  /** How often an open stream looks for new events. */
  pollMs?: number;
  /** Comment lines that keep idle proxies from closing the stream. */
  heartbeatMs?: number;
  /** How often ?progress=true streams are sent the newest jobs that changed. */
  progressMs?: number;
}

const PAGE = 500;
/** The jobs ?progress=true follows: the newest page of ListJobs as the dashboard shows it. */
const PROGRESS_JOBS = 50;

/**
 * [protocol §5] GET /events: job and execution events ($aws/events payloads) as server-sent events. Each event's id
 * is its sequence number; a client reconnecting with Last-Event-ID (or ?lastEventId=) gets every event after it
 * that is still within retention, in order. Without one, the stream starts at the newest event. ?jobId= keeps
 * one job's events. ?progress=true adds `jobProgress` events without an id (they are not stored, so not
 * replayed): at once the newest jobs with their jobProcessDetails, then each of them again when it changed.
 */
export function eventRoutes(system: ServiceDeps, options: EventRoutesOptions = {}): FastifyPluginAsync {
  const pollMs = options.pollMs ?? 250;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  // A stream reads as its request's tenant: row-level security leaves it that tenant's events only.
  const deps: ServiceDeps = { ...system, db: tenantDb(system.db, requestTenant) };
  return async (app) => {
    const open = new Set<ServerResponse>();
    // One progress poll per tenant, shared by that tenant's streams, reading as that tenant.
    const watchers = new Map<string, JobProgressWatcher>();
    const progressOf = (tenantId: string): JobProgressWatcher => {
      let watcher = watchers.get(tenantId);
      if (watcher === undefined) {
        watcher = createJobProgressWatcher({ ...system, db: tenantDb(system.db, () => tenantId) }, app.log, {
          intervalMs: options.progressMs ?? 1000,
          limit: PROGRESS_JOBS,
        });
        watchers.set(tenantId, watcher);
      }
      return watcher;
    };
    app.addHook('preClose', async () => {
      for (const watcher of watchers.values()) watcher.close();
      for (const res of open) res.end();
    });

    app.get(
      '/events',
      {
        schema: {
          operationId: 'StreamEvents',
          summary: 'Job and execution events as server-sent events, resumable with Last-Event-ID',
          tags: ['events'],
          response: {
            200: {
              description: 'a text/event-stream: `id: <seq>`, `event: <type>`, `data: <$aws/events payload>`',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
          },
          querystring: {
            type: 'object',
            properties: {
              jobId: { type: 'string' },
              lastEventId: { type: 'string' },
              progress: { type: 'boolean' },
            },
          },
        },
      },
      async (request, reply) => {
        const query = request.query as { jobId?: string; lastEventId?: string; progress?: boolean };
        const resumeFrom = request.headers['last-event-id'] ?? query.lastEventId;
        if (resumeFrom !== undefined && !/^\d{1,15}$/.test(String(resumeFrom))) {
          return sendError(reply, 'InvalidRequest', 'Last-Event-ID must be the id of an event (a number)');
        }
        if (query.jobId !== undefined && !isValidJobId(query.jobId)) {
          return sendError(reply, 'InvalidRequest', `jobId ${query.jobId} is not a valid job id`);
        }
        let cursor = resumeFrom === undefined ? await selectLastEventSeq(deps.db) : Number(resumeFrom);

        const res = reply.raw;
        reply.hijack();
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write(`retry: 1000\n\n`);
        open.add(res);

        let closed = false;
        let timer: NodeJS.Timeout | undefined;
        const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), heartbeatMs);
        heartbeat.unref();
        const unsubscribe = query.progress
          ? progressOf(requestTenant()).subscribe((jobs) => {
              for (const job of jobs) res.write(`event: jobProgress\ndata: ${JSON.stringify(job)}\n\n`);
            })
          : undefined;
        res.on('close', () => {
          closed = true;
          open.delete(res);
          clearInterval(heartbeat);
          unsubscribe?.();
          if (timer) clearTimeout(timer);
        });

        const poll = async (): Promise<void> => {
          if (closed) return;
          let full = false;
          try {
            const rows = await selectEventsAfter(deps.db, cursor, PAGE, query.jobId);
            for (const row of rows) {
              const kind = row.payload.eventType === 'JOB' ? 'job' : 'jobExecution';
              res.write(`id: ${row.seq}\nevent: ${kind}\ndata: ${JSON.stringify(row.payload)}\n\n`);
              cursor = row.seq;
            }
            full = rows.length === PAGE;
          } catch (err) {
            request.log.error({ err }, 'GET /events poll failed; retrying');
          }
          if (!closed) timer = setTimeout(() => void poll(), full ? 0 : pollMs);
        };
        await poll();
      },
    );
  };
}
