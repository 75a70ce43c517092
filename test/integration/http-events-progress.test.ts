import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { FleetJobs } from '../../src/app.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';

interface Sse {
  type: string;
  id: string | undefined;
  data: Record<string, unknown>;
}

/** An open GET /events stream whose events can be awaited one predicate at a time. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const stop = new AbortController();
  const res = await fetch(url, { headers, signal: stop.signal });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: Sse[] = [];
  let buffer = '';
  let read = 0;
  const pump = async (): Promise<void> => {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended');
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))
          ?.slice(name.length + 2);
      const data = field('data');
      if (data !== undefined)
        seen.push({ type: field('event') ?? 'message', id: field('id'), data: JSON.parse(data) });
    }
  };
  return {
    seen,
    /** The next event (after the ones already taken) that matches; fails after 5 s. */
    async next(match: (e: Sse) => boolean, what: string): Promise<Sse> {
      const deadline = Date.now() + 5000;
      for (;;) {
        while (read < seen.length) {
          const e = seen[read++] as Sse;
          if (match(e)) return e;
        }
        if (Date.now() > deadline) throw new Error(`no ${what} on the stream within 5 s`);
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            pump(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000);
            }),
          ]);
        } finally {
          clearTimeout(timer);
        }
      }
    },
    async close() {
      stop.abort();
      await reader.cancel().catch(() => {});
    },
  };
}

describe.each(BACKENDS)('GET /events?progress=true on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  const put = (path: string, body: unknown) =>
    fetch(`${app.addresses.http}${path}`, {
      method: path.startsWith('/things/') ? 'POST' : 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db });
    for (const name of ['p-1', 'p-2']) expect((await put(`/things/${name}`, {})).status).toBe(200);
    expect((await put('/jobs/before', { targets: ['thing/p-1'], document: '{}' })).status).toBe(200);
    device = await connectDevice(app.addresses.mqtt, { clientId: 'p-2' });
  }, 60_000);
  afterAll(async () => {
    await device?.endAsync();
    await app?.close();
    await t?.close();
  });

  it('sends the newest jobs at once, then new jobs and moving counters as jobProgress events without ids', async () => {
    const stream = await openStream(`${app.addresses.http}/events?progress=true`);
    try {
      const first = await stream.next((e) => e.type === 'jobProgress', 'first jobProgress');
      expect(first.id).toBeUndefined();
      expect(first.data).toMatchObject({
        jobId: 'before',
        status: 'IN_PROGRESS',
        targetSelection: 'SNAPSHOT',
        jobProcessDetails: { numberOfQueuedThings: 1, numberOfInProgressThings: 0 },
      });

      expect((await put('/jobs/after', { targets: ['thing/p-2'], document: '{}' })).status).toBe(200);
      const created = await stream.next((e) => e.data.jobId === 'after', 'jobProgress for the new job');
      expect(created.data).toMatchObject({
        status: 'IN_PROGRESS',
        jobProcessDetails: { numberOfQueuedThings: 1 },
      });

      // QUEUED -> IN_PROGRESS is no $aws event of its own; the counters still move on the stream.
      const started = await deviceRequest(device, '$aws/things/p-2/jobs/start-next', { clientToken: 's' });
      expect(started.json.execution).toMatchObject({ jobId: 'after', status: 'IN_PROGRESS' });
      const moving = await stream.next(
        (e) => e.type === 'jobProgress' && e.data.jobId === 'after',
        'jobProgress after start-next',
      );
      expect(moving.data.jobProcessDetails).toMatchObject({
        numberOfQueuedThings: 0,
        numberOfInProgressThings: 1,
      });

      const done = await deviceRequest(device, '$aws/things/p-2/jobs/after/update', {
        status: 'SUCCEEDED',
        clientToken: 'd',
      });
      expect(done.outcome).toBe('accepted');
      // The stored events keep their ids (Last-Event-ID resumes them); the job's completion follows.
      const succeeded = await stream.next((e) => e.type === 'jobExecution', 'the succeeded event');
      expect(succeeded.id).toMatch(/^\d+$/);
      expect(succeeded.data).toMatchObject({ jobId: 'after', operation: 'succeeded', status: 'SUCCEEDED' });
      const completed = await stream.next(
        (e) => e.type === 'jobProgress' && e.data.jobId === 'after' && e.data.status === 'COMPLETED',
        'jobProgress of the completed job',
      );
      // Finished jobs are not recounted every interval: their counters change through events only.
      expect(completed.data.jobProcessDetails).toBeUndefined();
      // An unchanged job is not sent again.
      expect(stream.seen.filter((e) => e.data.jobId === 'before')).toHaveLength(1);
    } finally {
      await stream.close();
    }
  });

  it('sends no jobProgress events to a stream that did not ask, and replays stored events after Last-Event-ID', async () => {
    const all = await openStream(`${app.addresses.http}/events`, { 'last-event-id': '0' });
    try {
      const first = await all.next((e) => e.type === 'jobExecution', 'the stored execution event');
      expect(first.data).toMatchObject({ jobId: 'after', operation: 'succeeded' });
      await all.next((e) => e.type === 'job', 'the stored job event');
      expect(all.seen.some((e) => e.type === 'jobProgress')).toBe(false);
    } finally {
      await all.close();
    }
  });
});
