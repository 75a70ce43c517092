import { authHeaders, reportUnauthorized } from './api';

export interface ServerEvent {
  type: string;
  data: string;
  id: string | undefined;
}

export type StreamState = 'connecting' | 'live' | 'reconnecting';

/**
 * Reads GET /events with fetch rather than EventSource, because EventSource cannot send the Authorization
 * header and a key in the URL would end up in access logs. Reconnects after a drop with Last-Event-ID, so no
 * stored event is missed; `retry:` from the server sets the delay.
 */
export function openEventStream(
  path: string,
  handlers: { onEvent: (e: ServerEvent) => void; onState: (s: StreamState, detail?: string) => void },
): () => void {
  const stop = new AbortController();
  let lastEventId: string | undefined;
  let retryMs = 1000;
  let failures = 0;

  const run = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      let detail = 'the event stream ended';
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const res = await fetch(path, { headers, signal: stop.signal, cache: 'no-store' });
        // A revoked or wrong key will not start working by retrying: sign out.
        if (res.status === 401) return reportUnauthorized('the server no longer accepts this key');
        if (!res.ok || res.body === null) throw new Error(`/events answered ${res.status}`);
        failures = 0;
        handlers.onState('live');
        await readEvents(res.body, (e) => {
          if (e.id !== undefined) lastEventId = e.id;
          if (e.type === 'retry') retryMs = Number(e.data);
          else if (e.type !== 'id') handlers.onEvent(e);
        });
      } catch (err) {
        if (stop.signal.aborted) return;
        detail = err instanceof Error ? err.message : String(err);
      }
      if (stop.signal.aborted) return;
      failures += 1;
      handlers.onState('reconnecting', detail);
      await new Promise((r) => setTimeout(r, Math.min(retryMs * failures, 15_000)));
    }
  };
  void run();
  return () => stop.abort();
}

/** The text/event-stream format: blocks separated by a blank line of `field: value` lines. */
async function readEvents(body: ReadableStream<Uint8Array>, emit: (e: ServerEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r/g, '');
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const raw = colon < 0 ? '' : line.slice(colon + 1);
        const v = raw.startsWith(' ') ? raw.slice(1) : raw;
        if (field === 'event') type = v;
        else if (field === 'data') data.push(v);
        else if (field === 'id') id = v;
        else if (field === 'retry' && /^\d+$/.test(v)) emit({ type: 'retry', data: v, id: undefined });
      }
      if (data.length > 0) emit({ type, data: data.join('\n'), id });
      else if (id !== undefined) emit({ type: 'id', data: '', id });
    }
  }
}
