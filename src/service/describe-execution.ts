import { FleetJobsError } from '../protocol/errors.js';
import { isTerminal } from '../protocol/states.js';
import { selectExecution, selectHeadExecution, type ExecutionWithDocument } from '../store/executions.js';
import type { ServiceDeps } from './deps.js';

/**
 * DescribeJobExecution: `$next` names the head without changing it (undefined when nothing is pending); an
 * explicit jobId names the given executionNumber or the latest execution. [protocol §3] Describing a terminal
 * execution by explicit jobId is TerminalStateReached.
 */
export async function describeExecution(
  deps: ServiceDeps,
  args: { thingName: string; jobId: string; executionNumber?: number | undefined },
): Promise<ExecutionWithDocument | undefined> {
  if (args.jobId === '$next') return selectHeadExecution(deps.db, args.thingName);
  const row = await selectExecution(deps.db, args);
  if (row === undefined) {
    const which = args.executionNumber === undefined ? '' : ` with executionNumber ${args.executionNumber}`;
    throw new FleetJobsError(
      'ResourceNotFound',
      `no execution of job ${args.jobId} on thing ${args.thingName}${which}`,
    );
  }
  if (isTerminal(row.status)) {
    throw new FleetJobsError(
      'TerminalStateReached',
      `the execution of job ${args.jobId} on thing ${args.thingName} is ${row.status}, a terminal status`,
    );
  }
  return row;
}
