import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Files run in parallel; each makes its own schema (PostgreSQL) or in-memory PGlite.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
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
