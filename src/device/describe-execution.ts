import type { DescribeRequest } from '../protocol/messages.js';
import { describeExecution } from '../service/describe-execution.js';
import { toJobExecution } from './payloads.js';
import type { DeviceHandler } from './handler.js';

/** `{root}/{jobId}/get` (jobId may be `$next`): includeJobDocument defaults to true. */
export const handleDescribe: DeviceHandler<DescribeRequest> = async (deps, req) => {
  const row = await describeExecution(deps, {
    thingName: req.thingName,
    jobId: req.jobId ?? '$next',
    executionNumber: req.body.executionNumber,
  });
  if (row === undefined) return {};
  return { execution: toJobExecution(row, deps.clock(), req.body.includeJobDocument ?? true) };
};
