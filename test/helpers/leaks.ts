import { openResources } from './open-resources.js';

/**
 * What a test file leaves open, found from the process itself: sockets, listening servers, child processes and
 * other ref'd handles (Node's active handle list), ref'd timers (counted: Node does not list them), and the
 * test databases of open-resources.ts, which an in-memory PGlite needs as it holds no handle.
 */
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

/** What the process has open now: compared against later by leaksSince. */
export interface OpenSnapshot {
  handles: Set<Handle>;
  timers: number;
}

export function openNow(): OpenSnapshot {
  return { handles: new Set(activeHandles()), timers: timers() };
}

/** Everything open now that was not open at `before`, in words, plus the test databases still open. */
export function leaksSince(before: OpenSnapshot): string[] {
  const found = activeHandles()
    .filter((h) => !before.handles.has(h))
    .map(describeHandle)
    .filter((d): d is string => d !== undefined);
  const extraTimers = timers() - before.timers;
  if (extraTimers > 0)
    found.push(`${extraTimers} pending timer(s) (setTimeout/setInterval not cleared or unref'd)`);
  return [...found, ...openResources()];
}
