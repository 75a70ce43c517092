import { FleetJobsError } from '../protocol/errors.js';
import { deviceTransition, isDeviceSettable } from '../protocol/states.js';
import type { ExecutionWithDocument } from '../store/executions.js';
import { deviceBatcher, type DeviceUpdate } from './device-batch.js';
import type { ServiceDeps } from './deps.js';

export interface UpdateExecutionInput extends Omit<DeviceUpdate, 'status'> {
  status: string;
}

/**
 * UpdateJobExecution: under the thing's lock, checks the device transition and expectedVersion against the
 * current execution, then applies a guarded UPDATE and writes the notifications its change causes, in one
 * transaction shared with concurrent device writes of other things (device-batch.ts). Returns the execution as
 * it is after the change.
 */
export async function updateExecution(
  deps: ServiceDeps,
  input: UpdateExecutionInput,
): Promise<ExecutionWithDocument> {
  const { status } = input;
  if (!isDeviceSettable(status)) {
    const verdict = deviceTransition('QUEUED', status);
    throw new FleetJobsError('InvalidRequest', verdict.ok ? undefined : verdict.message);
  }
  const row = await deviceBatcher(deps).submit({
    kind: 'update',
    thingName: input.thingName,
    input: { ...input, status },
  });
  // An accepted update always names its execution; only a start-next with nothing pending has none.
  return row as ExecutionWithDocument;
}
