import type { UpdateRequest } from '../protocol/messages.js';
import { updateExecution } from '../service/update-execution.js';
import { toExecutionState } from './payloads.js';
import type { DeviceHandler } from './handler.js';

/** `{root}/{jobId}/update`: executionState and jobDocument only when asked for (both default false). */
export const handleUpdate: DeviceHandler<UpdateRequest> = async (deps, req) => {
  const { body } = req;
  const row = await updateExecution(deps, {
    thingName: req.thingName,
    jobId: req.jobId as string,
    status: body.status,
    statusDetails: body.statusDetails,
    // AWS's embedded Jobs library sends a numeric string; the schema admits only digits.
    expectedVersion: body.expectedVersion === undefined ? undefined : Number(body.expectedVersion),
    executionNumber: body.executionNumber,
    stepTimeoutInMinutes: body.stepTimeoutInMinutes,
  });
  const reply: Record<string, unknown> = {};
  if (body.includeJobExecutionState === true) reply.executionState = toExecutionState(row);
  if (body.includeJobDocument === true) reply.jobDocument = JSON.parse(row.jobDocument);
  return reply;
};
