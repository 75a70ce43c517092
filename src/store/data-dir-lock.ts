import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Another live process holds the embedded database's data directory. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

/** Lock files this process holds: its own pid in one would otherwise read as a stale lock. */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite is PostgreSQL in single-user mode: two processes on one data directory corrupt it, and PGlite itself
 * takes no lock. `<dataDir>.lock` holds the owner's pid; a lock whose process is gone (kill -9, a container
 * restarted with the same pid) is taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = resolve(`${dataDir}.lock`);
  if (heldHere.has(path)) {
    throw new DataDirInUseError(`the embedded database ${dataDir} is already open in this process`);
  }
  mkdirSync(dirname(path), { recursive: true });
  const own = `${process.pid}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, own, { flag: 'wx', mode: 0o600 });
      heldHere.add(path);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      // Removed by its owner meanwhile: try again.
    }
    if (attempt < 2 && !(Number.isInteger(holder) && holder !== process.pid && alive(holder))) {
      try {
        unlinkSync(path);
      } catch {
        // Another process took it over first; the next attempt sees its pid.
      }
      continue;
    }
    throw new DataDirInUseError(
      `the embedded database ${dataDir} is in use by process ${holder} (a running fleetjobs serve?): ` +
        'stop it first, or set DATABASE_URL to share a PostgreSQL database between processes',
    );
  }
  return () => {
    heldHere.delete(path);
    try {
      if (readFileSync(path, 'utf8') === own) unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
}
