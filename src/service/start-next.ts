import type { ExecutionWithDocument } from '../store/executions.js';
import { deviceBatcher, type StartNextInput } from './device-batch.js';
import type { ServiceDeps } from './deps.js';

export type { StartNextInput };

/**
 * StartNextPendingJobExecution: under the thing's lock, picks the head; a QUEUED head becomes IN_PROGRESS
 * (startedAt, version + 1, statusDetails if given, step timer), an IN_PROGRESS head is returned unchanged.
 * Undefined when nothing is pending. Two calls for one thing never share a transaction and serialize on the
 * lock, so they can never start two different heads. Concurrent calls for different things share one
 * (device-batch.ts).
 */
export function startNext(
  deps: ServiceDeps,
  thingName: string,
  input: StartNextInput,
): Promise<ExecutionWithDocument | undefined> {
  return deviceBatcher(deps).submit({ kind: 'start-next', thingName, input });
}
