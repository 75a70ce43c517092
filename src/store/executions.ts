import type { Queryable } from './db.js';
import { PENDING_SQL } from './states-sql.js';
import { HEAD_ORDER_SQL } from './notifications.js';
import { EXECUTION_COLUMNS, type ExecutionRow } from './rows.js';
import { LIMITS } from '../protocol/limits.js';

/** An execution with its job's document (the JSON text as the operator sent it), for device replies. */
export interface ExecutionWithDocument extends ExecutionRow {
  jobDocument: string;
}

const E_COLUMNS = EXECUTION_COLUMNS.split(',')
  .map((c) => `e.${c.trim()}`)
  .join(', ');

/** The pending executions of a thing in head order, at most the list cap (GetPendingJobExecutions). */
export async function selectPendingExecutions(db: Queryable, thingName: string): Promise<ExecutionRow[]> {
  return db.query<ExecutionRow>(
    `SELECT ${E_COLUMNS} FROM job_executions e
     WHERE e.thing_name = $1 AND e.status IN (${PENDING_SQL})
     ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST}`,
    [thingName],
  );
}

/** The head of a thing ([protocol §3]: IN_PROGRESS first, then queue order) with its job document. */
export async function selectHeadExecution(
  db: Queryable,
  thingName: string,
): Promise<ExecutionWithDocument | undefined> {
  const rows = await db.query<ExecutionWithDocument>(
    `SELECT ${E_COLUMNS}, j.document AS job_document
     FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
     WHERE e.thing_name = $1 AND e.status IN (${PENDING_SQL})
     ORDER BY ${HEAD_ORDER_SQL} LIMIT 1`,
    [thingName],
  );
  return rows[0];
}

/** One execution of a job on a thing: the given executionNumber, or the latest one when it is omitted. */
export async function selectExecution(
  db: Queryable,
  args: { thingName: string; jobId: string; executionNumber?: number | undefined },
): Promise<ExecutionWithDocument | undefined> {
  const rows = await db.query<ExecutionWithDocument>(
    `SELECT ${E_COLUMNS}, j.document AS job_document
     FROM job_executions e JOIN jobs j ON j.job_id = e.job_id
     WHERE e.thing_name = $1 AND e.job_id = $2 AND ($3::bigint IS NULL OR e.execution_number = $3::bigint)
     ORDER BY e.execution_number DESC LIMIT 1`,
    [args.thingName, args.jobId, args.executionNumber ?? null],
  );
  return rows[0];
}
