import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { leaksSince, openNow } from '../helpers/leaks.js';
import { trackClosed, trackOpen } from '../helpers/open-resources.js';

/** The detection behind test/setup/leak-check.ts: what it names, and that a closed resource is not named. */
describe('the leak check', () => {
  it('names a listening server and both ends of a connection until they are closed', async () => {
    const before = openNow();
    const server = createServer((s) => s.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const client = createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    const left = leaksSince(before);
    expect(left).toContain(`a server listening on 127.0.0.1:${port}`);
    expect(left).toContain(`a Socket to 127.0.0.1:${port} from port ${client.localPort}`);
    expect(left.filter((l) => l.startsWith('a Socket'))).toHaveLength(2);
    client.destroy();
    server.close();
    await once(server, 'close');
    await expect.poll(() => leaksSince(before)).toEqual([]);
  });

  it("names a child process, a ref'd timer and an open test database, and forgets unref'd timers", async () => {
    const before = openNow();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const timer = setTimeout(() => {}, 60_000);
    const unrefd = setTimeout(() => {}, 60_000).unref();
    const db = {};
    trackOpen(db, 'a pglite test database (createTestDb at test/integration/x.test.ts:3)');
    const left = leaksSince(before);
    expect(left.find((l) => l.startsWith(`a child process (pid ${child.pid}`))).toBeDefined();
    expect(left).toContain("1 pending timer(s) (setTimeout/setInterval not cleared or unref'd)");
    expect(left).toContain('a pglite test database (createTestDb at test/integration/x.test.ts:3)');
    child.kill();
    await once(child, 'exit');
    clearTimeout(timer);
    clearTimeout(unrefd);
    trackClosed(db);
    await expect.poll(() => leaksSince(before)).toEqual([]);
  });
});
