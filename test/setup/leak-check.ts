import { relative } from 'node:path';
import { afterAll, expect } from 'vitest';
import { openResources } from '../helpers/open-resources.js';

/**
 * Fails a test file that leaves something open after its last afterAll: a socket (an MQTT client, a database
 * pool, an HTTP keep-alive connection), a listening server, a child process, a ref'd timer, or a test database
 * from createTestDb. Each file runs in a process of its own, so what this module sees when it is loaded, before
 * the file is imported, is the worker's own (vitest's IPC pipes, stdio, its timers): only what is open at the end
 * and was not open then counts. Sockets close asynchronously, so the check waits up to GRACE_MS for them.
 * See docs/development.md, "Leak check"; FLEETJOBS_LEAK_CHECK=off turns it off while debugging.
 */
const GRACE_MS = 3_000;
const PORTS: Record<number, string> = { 5432: 'PostgreSQL', 1883: 'Mosquitto', 6379: 'Redis' };

interface Handle {
  constructor: { name: string };
  _handle?: { hasRef?: () => boolean } | null;
  hasRef?: () => boolean;
}
interface SocketLike extends Handle {
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  destroyed?: boolean;
}
interface ServerLike extends Handle {
  address(): { address: string; port: number } | string | null;
  listening: boolean;
}
interface ChildLike extends Handle {
  pid?: number;
  spawnargs?: string[];
}

const activeHandles = (): Handle[] =>
  (process as unknown as { _getActiveHandles(): Handle[] })._getActiveHandles();
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

const baseline = new Set<Handle>(activeHandles());
const baselineTimers = timers();

function describeHandle(h: Handle): string | undefined {
  const kind = h.constructor.name;
  if ('listening' in h && typeof (h as ServerLike).address === 'function') {
    const server = h as ServerLike;
    if (!server.listening) return undefined;
    const a = server.address();
    return `a server listening on ${typeof a === 'string' ? a : a ? `${a.address}:${a.port}` : '?'}`;
  }
  if (kind === 'ChildProcess') {
    const child = h as ChildLike;
    return `a child process (pid ${child.pid ?? '?'}: ${(child.spawnargs ?? []).join(' ').slice(0, 120)})`;
  }
  if (kind === 'Socket' || kind === 'TLSSocket') {
    const socket = h as SocketLike;
    if (socket.destroyed) return undefined;
    if (socket.remotePort === undefined)
      return `a ${kind} (${socket.localPort ? `port ${socket.localPort}` : 'pipe'})`;
    const service = PORTS[socket.remotePort];
    return `a ${kind} to ${socket.remoteAddress}:${socket.remotePort}${service ? ` (${service})` : ''} from port ${socket.localPort}`;
  }
  // Any other handle type (UDP, file watchers, ...) that keeps the process alive.
  const refed = h._handle?.hasRef?.() ?? h.hasRef?.() ?? true;
  return refed ? `a ${kind} handle` : undefined;
}

function leaks(): string[] {
  const found = activeHandles()
    .filter((h) => !baseline.has(h))
    .map(describeHandle)
    .filter((d): d is string => d !== undefined);
  const extraTimers = timers() - baselineTimers;
  if (extraTimers > 0)
    found.push(`${extraTimers} pending timer(s) (setTimeout/setInterval not cleared or unref'd)`);
  return [...found, ...openResources()];
}

afterAll(async () => {
  if (process.env.FLEETJOBS_LEAK_CHECK === 'off') return;
  const deadline = Date.now() + GRACE_MS;
  let left = leaks();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    left = leaks();
  }
  if (left.length === 0) return;
  const file = relative(process.cwd(), expect.getState().testPath ?? 'this test file');
  throw new Error(
    `leak check: ${file} left ${left.length} thing(s) open after its last afterAll ` +
      `(waited ${GRACE_MS} ms):\n  - ${left.join('\n  - ')}\n` +
      'Close every server, pool, client, process and timer the file opens (see docs/development.md, "Leak check").',
  );
});
