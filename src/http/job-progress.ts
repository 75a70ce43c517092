import type { FastifyBaseLogger } from 'fastify';
import type { ServiceDeps } from '../service/deps.js';
import { readJobProgress, type JobProgress } from '../service/job-progress.js';

export interface JobProgressWatcher {
  /** First call: every job of the newest page; then only those that changed. Returns the unsubscribe. */
  subscribe(onProgress: (jobs: JobProgress[]) => void): () => void;
  close(): void;
}

/**
 * [protocol §5] What GET /events?progress=true adds for the dashboard: new jobs and moving counters (queued -> in
 * progress) are not events of their own, so one poll per process, shared by every subscribed stream and running
 * only while one is open, reads the newest jobs and hands each stream the ones that changed. A slow read
 * (a large unfinished job) stretches the interval, so the poll never takes more than a fifth of the time.
 */
export function createJobProgressWatcher(
  deps: ServiceDeps,
  log: FastifyBaseLogger,
  options: { intervalMs: number; limit: number },
): JobProgressWatcher {
  const current = new Set<(jobs: JobProgress[]) => void>();
  const fresh = new Set<(jobs: JobProgress[]) => void>();
  let last = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let closed = false;

  const tick = async (): Promise<void> => {
    running = true;
    const started = Date.now();
    try {
      const jobs = await readJobProgress(deps, options.limit);
      const next = new Map(jobs.map((j) => [j.jobId as string, JSON.stringify(j)]));
      const changed = jobs.filter((j) => last.get(j.jobId as string) !== next.get(j.jobId as string));
      last = next;
      if (changed.length > 0) for (const fn of current) fn(changed);
      for (const fn of fresh) {
        fn(jobs);
        current.add(fn);
      }
      fresh.clear();
    } catch (err) {
      log.error({ err }, 'job progress poll failed; retrying');
    } finally {
      running = false;
      // Counting a large unfinished job takes a while: keep the poll to a fifth of the database's time.
      schedule(Math.max(options.intervalMs, 4 * (Date.now() - started)));
    }
  };
  const schedule = (ms: number) => {
    if (closed || timer !== undefined || running || current.size + fresh.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void tick();
    }, ms);
  };

  return {
    subscribe(onProgress) {
      fresh.add(onProgress);
      // A new stream gets its first page at once rather than at the next interval.
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      schedule(0);
      return () => {
        fresh.delete(onProgress);
        current.delete(onProgress);
        if (current.size + fresh.size === 0) {
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
          last = new Map();
        }
      };
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
