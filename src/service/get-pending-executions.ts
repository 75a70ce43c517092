import { selectPendingExecutions } from '../store/executions.js';
import type { ExecutionRow } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';

/** GetPendingJobExecutions: the pending executions of a thing in head order, capped at the list limit. */
export async function getPendingExecutions(
  deps: ServiceDeps,
  thingName: string,
): Promise<{ inProgress: ExecutionRow[]; queued: ExecutionRow[] }> {
  const rows = await selectPendingExecutions(deps.db, thingName);
  return {
    inProgress: rows.filter((r) => r.status === 'IN_PROGRESS'),
    queued: rows.filter((r) => r.status === 'QUEUED'),
  };
}
