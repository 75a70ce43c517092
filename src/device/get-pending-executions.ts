import type { GetPendingRequest } from '../protocol/messages.js';
import { getPendingExecutions } from '../service/get-pending-executions.js';
import { toSummary } from './payloads.js';
import type { DeviceHandler } from './handler.js';

/** `{root}/get`: both lists are always present, empty or not. */
export const handleGetPending: DeviceHandler<GetPendingRequest> = async (deps, req) => {
  const pending = await getPendingExecutions(deps, req.thingName);
  return {
    inProgressJobs: pending.inProgress.map(toSummary),
    queuedJobs: pending.queued.map(toSummary),
  };
};
