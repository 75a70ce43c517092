import { selectNewestJobsProgress } from '../store/job-progress.js';
import type { ServiceDeps } from './deps.js';
import { awsTime, compact } from './views.js';

/** A job's summary and, while it is unfinished, its jobProcessDetails: one `jobProgress` server-sent event. */
export type JobProgress = ReturnType<typeof progressView>;

function progressView(row: Awaited<ReturnType<typeof selectNewestJobsProgress>>[number]) {
  return compact({
    jobId: row.jobId,
    status: row.status,
    targetSelection: row.targetSelection,
    createdAt: awsTime(row.createdAt),
    lastUpdatedAt: awsTime(row.lastUpdatedAt),
    completedAt: awsTime(row.completedAt),
    jobProcessDetails: row.processDetails,
  });
}

export async function readJobProgress(deps: ServiceDeps, limit: number): Promise<JobProgress[]> {
  return (await selectNewestJobsProgress(deps.db, limit)).map(progressView);
}
