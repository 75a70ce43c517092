import type { Queryable } from './db.js';
import type { JobStatus } from '../protocol/states.js';
import type { TargetSelection } from './rows.js';
import type { JobProcessDetails } from './jobs.js';
import { PROCESS_DETAILS_SQL } from './events.js';

export interface JobProgressRow {
  jobId: string;
  status: JobStatus;
  targetSelection: TargetSelection;
  createdAt: Date;
  lastUpdatedAt: Date;
  completedAt: Date | null;
  /** Counted only for SCHEDULED and IN_PROGRESS jobs: the others change through events. */
  processDetails: JobProcessDetails | null;
}

/** The newest jobs with the counters of the unfinished ones: what the dashboard's live list shows. */
export async function selectNewestJobsProgress(db: Queryable, limit: number): Promise<JobProgressRow[]> {
  return db.query<JobProgressRow>(
    `SELECT j.job_id, j.status, j.target_selection, j.created_at, j.last_updated_at, j.completed_at,
            CASE WHEN j.status IN ('SCHEDULED', 'IN_PROGRESS') THEN ${PROCESS_DETAILS_SQL} END AS process_details
     FROM jobs j ORDER BY j.created_at DESC, j.job_id DESC LIMIT $1`,
    [limit],
  );
}
