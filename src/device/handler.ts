import type { ServiceDeps } from '../service/deps.js';

/** A validated device request: the thing it is for, the jobId from the topic, the payload. */
export interface DeviceRequest<B> {
  thingName: string;
  jobId?: string | undefined;
  body: B;
}

/** One per request topic; returns the accepted payload without clientToken and timestamp (the router adds them). */
export type DeviceHandler<B> = (deps: ServiceDeps, req: DeviceRequest<B>) => Promise<Record<string, unknown>>;
