export {
  createAgent,
  type Agent,
  type AgentCredentials,
  type AgentEvents,
  type AgentLogger,
  type AgentOptions,
  type JobCanceledEvent,
  type JobContext,
  type JobDoneEvent,
  type JobHandler,
  type JobStartEvent,
  type StepEvent,
} from './agent.js';
export {
  parseJobDocument,
  splitCommand,
  InvalidDocumentError,
  type JobDocument,
  type Action,
} from './document.js';
export { createBackoff, type BackoffOptions } from './backoff.js';
