export * from './states.js';
export * from './errors.js';
export * from './limits.js';
export * from './topics.js';
export * from './arns.js';
export * from './messages.js';
