import { useEffect, useState } from 'preact/hooks';
import { api, seg } from './api';
import { openEventStream, type ServerEvent, type StreamState } from './sse';
import type { Job, JobSummary } from './types';

type Listener = () => void;

/**
 * The jobs list kept live: the newest page of ListJobs, then GET /events?progress=true — `jobProgress` events
 * bring new jobs and moving counters, `job` / `jobExecution` events ($aws/events payloads) say a job changed.
 * Views subscribe to the whole list or to one job (a detail view reloads its executions when that job moves).
 */
export class LiveJobs {
  readonly jobs = new Map<string, JobSummary>();
  state: StreamState = 'connecting';
  stateDetail: string | undefined;
  loaded = false;
  private readonly listeners = new Set<Listener>();
  private readonly jobListeners = new Map<string, Set<Listener>>();
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();
  private close: (() => void) | undefined;

  start(): void {
    this.close = openEventStream('/events?progress=true', {
      onEvent: (e) => this.onEvent(e),
      onState: (state, detail) => {
        this.state = state;
        this.stateDetail = detail;
        this.changed();
      },
    });
  }

  stop(): void {
    this.close?.();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /** Newest first, as ListJobs orders them. */
  list(): JobSummary[] {
    return [...this.jobs.values()].sort(
      (a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0) || (a.jobId < b.jobId ? 1 : -1),
    );
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  subscribeJob(jobId: string, fn: Listener): () => void {
    let set = this.jobListeners.get(jobId);
    if (!set) this.jobListeners.set(jobId, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Takes a DescribeJob answer (the detail view has one) into the list. */
  put(job: Job): void {
    this.jobs.set(job.jobId, { ...this.jobs.get(job.jobId), ...job });
    this.changed();
  }

  private onEvent(e: ServerEvent): void {
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(e.data) as Record<string, unknown>;
    } catch {
      return;
    }
    const jobId = payload.jobId;
    if (typeof jobId !== 'string') return;
    if (e.type === 'jobProgress') {
      const next = payload as unknown as JobSummary;
      const before = this.jobs.get(jobId);
      this.jobs.set(jobId, {
        ...next,
        jobProcessDetails: next.jobProcessDetails ?? before?.jobProcessDetails,
      });
      this.loaded = true;
      // Finished jobs come without counters (they change only through events): read them once.
      if (next.jobProcessDetails === undefined && (before === undefined || before.status !== next.status)) {
        this.refresh(jobId);
      }
      this.changed(jobId);
    } else if (e.type === 'job' && payload.operation === 'deleted') {
      this.jobs.delete(jobId);
      this.changed(jobId);
    } else if (e.type === 'job' || e.type === 'jobExecution') {
      this.refresh(jobId);
      this.changed(jobId);
    }
  }

  /** DescribeJob soon, once for a burst of events of one job. */
  private refresh(jobId: string): void {
    if (this.pending.has(jobId)) return;
    this.pending.set(
      jobId,
      setTimeout(() => {
        this.pending.delete(jobId);
        api<{ job: Job }>('GET', `/jobs/${seg(jobId)}`)
          .then(({ job }) => {
            this.put(job);
            this.changed(jobId);
          })
          .catch(() => {
            // Deleted meanwhile, or the server is away: the next event or reconnect brings the truth.
          });
      }, 150),
    );
  }

  private changed(jobId?: string): void {
    for (const fn of this.listeners) fn();
    if (jobId !== undefined) for (const fn of this.jobListeners.get(jobId) ?? []) fn();
  }
}

/** Re-renders the calling component whenever the live list changes. */
export function useLive(live: LiveJobs): void {
  const [, setTick] = useState(0);
  useEffect(() => live.subscribe(() => setTick((n) => n + 1)), [live]);
}
