import { ensurePgliteSnapshot } from '../helpers/pglite-snapshot.js';

/** Once per run, before any file: the migrated PGlite every createTestDb('pglite') loads. */
export default async function setup(): Promise<void> {
  if ((process.env.FLEETJOBS_TEST_BACKENDS ?? 'postgres,pglite').split(',').includes('pglite')) {
    await ensurePgliteSnapshot();
  }
}
