import { relative } from 'node:path';
import { afterAll, expect } from 'vitest';
import { leaksSince, openNow } from '../helpers/leaks.js';

/**
 * Fails a test file that leaves something open after its last afterAll: a socket (an MQTT client, a database
 * pool, an HTTP keep-alive connection), a listening server, a child process, a ref'd timer, or a test database
 * from createTestDb. Vitest runs this module again before each file a worker runs (isolate: false keeps the
 * worker's other modules), so what it sees then is the worker's own (vitest's IPC pipes, stdio, its timers) and
 * what earlier files left that passed their check: only what is open at the end and was not open then counts,
 * which blames the file that opened it. Sockets close asynchronously, so the check waits up to GRACE_MS for them.
 * See docs/development.md, "Leak check"; FLEETJOBS_LEAK_CHECK=off turns it off while debugging.
 */
const GRACE_MS = 3_000;
const baseline = openNow();

afterAll(async () => {
  if (process.env.FLEETJOBS_LEAK_CHECK === 'off') return;
  const deadline = Date.now() + GRACE_MS;
  let left = leaksSince(baseline);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    left = leaksSince(baseline);
  }
  if (left.length === 0) return;
  const file = relative(process.cwd(), expect.getState().testPath ?? 'this test file');
  throw new Error(
    `leak check: ${file} left ${left.length} thing(s) open after its last afterAll ` +
      `(waited ${GRACE_MS} ms):\n  - ${left.join('\n  - ')}\n` +
      'Close every server, pool, client, process and timer the file opens (see docs/development.md, "Leak check").',
  );
});
