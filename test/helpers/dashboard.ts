import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const DASHBOARD_SOURCE = join(root, 'dashboard');
export const DASHBOARD_BUILD = join(root, 'dist', 'dashboard');

function newestMtime(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/**
 * Builds dist/dashboard (what `npm run build` does) when it is missing or older than its sources, so the
 * tests run the page as the server ships it. The server reads it once at start: call this before.
 */
export async function ensureDashboardBuilt(): Promise<void> {
  const index = join(DASHBOARD_BUILD, 'index.html');
  // The app imports the status table of src/protocol too.
  const sources = Math.max(newestMtime(DASHBOARD_SOURCE), newestMtime(join(root, 'src', 'protocol')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const { build } = await import('vite');
  await build({ configFile: join(DASHBOARD_SOURCE, 'vite.config.ts'), logLevel: 'warn' });
}
