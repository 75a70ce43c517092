import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * vitest globalSetup for test/package: these tests import fleetjobs by its package name, which resolves through
 * package.json "exports" to dist/. Rebuild when a source file is newer than its compiled file (CI's `npm ci`
 * has just built it through `prepare`, so there this does nothing).
 */
const SOURCE_DIRS = ['src', 'broker', 'agent'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

export function distIsStale(): boolean {
  return SOURCE_DIRS.flatMap(sources).some(
    (src) => mtime(join('dist', src.replace(/\.ts$/, '.js'))) < mtime(src),
  );
}

export default function setup(): void {
  if (!distIsStale()) return;
  console.log('test/package: dist/ is older than the sources; building (npm run build)');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
