export { createAgent } from './agent.js';
export type {
  Agent,
  AgentCredentials,
  AgentEvents,
  AgentLogger,
  AgentOptions,
  JobCanceledEvent,
  JobContext,
  JobDoneEvent,
  JobHandler,
  JobStartEvent,
  StepEvent,
} from './types.js';
export {
  parseJobDocument,
  splitCommand,
  InvalidDocumentError,
  type JobDocument,
  type Action,
} from './document.js';
export { createBackoff, type BackoffOptions } from './backoff.js';
