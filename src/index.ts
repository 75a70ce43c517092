export { createFleetJobs, type FleetJobs, type FleetJobsOptions, type Addresses } from './app.js';
export { loadConfig, type Config, ConfigError } from './config.js';
export { createPostgresDb, createPgliteDb, type Db, type Queryable } from './store/db.js';
export { migrate } from './store/migrate.js';
export * from './protocol/index.js';
