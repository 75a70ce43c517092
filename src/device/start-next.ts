import type { StartNextRequest } from '../protocol/messages.js';
import { startNext } from '../service/start-next.js';
import { toJobExecution } from './payloads.js';
import type { DeviceHandler } from './handler.js';

/** `{root}/start-next`: `execution` is omitted when nothing is pending. */
export const handleStartNext: DeviceHandler<StartNextRequest> = async (deps, req) => {
  const row = await startNext(deps, req.thingName, {
    statusDetails: req.body.statusDetails,
    stepTimeoutInMinutes: req.body.stepTimeoutInMinutes,
  });
  return row === undefined ? {} : { execution: toJobExecution(row, deps.clock(), true) };
};
