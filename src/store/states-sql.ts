import { PENDING_STATUSES, STATUS_COUNTERS, type ExecutionStatus } from '../protocol/states.js';

/** SQL fragments generated from the status table in src/protocol/states.ts, so that the two never disagree. */

const literals = (statuses: readonly ExecutionStatus[]) => statuses.map((s) => `'${s}'`).join(', ');

/** The pending statuses as an SQL list: `status IN (${PENDING_SQL})`. */
export const PENDING_SQL = literals(PENDING_STATUSES);

/** A jsonb object of the jobProcessDetails counters over rows whose status column is `column`. */
export function statusCountsSql(column: string): string {
  const pairs = Object.entries(STATUS_COUNTERS).map(
    ([status, counter]) => `'${counter}', count(*) FILTER (WHERE ${column} = '${status}')`,
  );
  return `jsonb_build_object(${pairs.join(', ')})`;
}
