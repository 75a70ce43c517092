import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Files run in parallel, one process per worker; each makes its own schema (PostgreSQL) or in-memory PGlite.
    pool: 'forks',
    // A worker runs its files one after another and keeps the modules it imported: a fresh process per file
    // re-imported the server (fastify, aedes, the AWS SDKs), compiled PGlite's WebAssembly and the route schemas
    // again, ~40% of the suite's CPU. The leak check still fails the file that leaves something open.
    isolate: false,
    // One worker per core: the files wait on PostgreSQL and sockets much of the time, so vitest's default
    // (cores - 1) leaves a 2-core machine half idle.
    maxWorkers: Number(process.env.FLEETJOBS_TEST_WORKERS ?? availableParallelism()),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/setup/global.ts'],
    setupFiles: ['test/setup/leak-check.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'conformance', include: ['test/conformance/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
      {
        extends: true,
        // Imports fleetjobs by its package name (dist/, built first when stale), as a user's test suite does.
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          globalSetup: ['test/package/build-dist.ts'],
        },
      },
    ],
  },
});
