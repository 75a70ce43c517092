/**
 * A small client of the operator REST API for the CLI: JSON in and out, the operator key as a Bearer header,
 * and every failure turned into an ApiError that carries the server's own message and AWS error name.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errorType: string | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiClientOptions {
  api: string;
  token: string | undefined;
  fetch?: typeof fetch;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface ApiClient {
  readonly api: string;
  request<T>(method: string, path: string, options?: { query?: Query; body?: unknown }): Promise<T>;
  /** Follows nextToken until the last page (or `max` items), concatenating the `key` arrays. */
  list<T>(path: string, key: string, options?: { query?: Query; max?: number }): Promise<T[]>;
  /** A raw streaming GET (server-sent events); undefined when the server has no such route. */
  stream(path: string, signal: AbortSignal): Promise<Response | undefined>;
}

/** Path segments are encoded, so a name can never change the route it is sent to. */
export function path(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce(
    (acc, s, i) => acc + s + (i < values.length ? encodeURIComponent(values[i] as string) : ''),
    '',
  );
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const api = options.api.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    ...extra,
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  });

  const send = async (url: string, init: RequestInit): Promise<Response> => {
    try {
      return await doFetch(url, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(
        `cannot reach ${api} (${cause?.code ?? cause?.message ?? (err as Error).message}); set --api or FLEETJOBS_API`,
        0,
        undefined,
      );
    }
  };

  const request = async <T>(
    method: string,
    p: string,
    opts: { query?: Query; body?: unknown } = {},
  ): Promise<T> => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${api}${p}${qs.size > 0 ? `?${qs}` : ''}`;
    const res = await send(url, {
      method,
      headers: headers(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    });
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new ApiError(
        `${method} ${p}: the connection broke while reading the answer (${(err as Error).message})`,
        0,
        undefined,
      );
    }
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) {
      const message =
        body !== null &&
        typeof body === 'object' &&
        typeof (body as { message?: unknown }).message === 'string'
          ? (body as { message: string }).message
          : `${method} ${p} answered ${res.status} ${res.statusText}`;
      throw new ApiError(message, res.status, res.headers.get('x-amzn-errortype') ?? undefined);
    }
    return body as T;
  };

  return {
    api,
    request,
    async list<T>(p: string, key: string, opts: { query?: Query; max?: number } = {}): Promise<T[]> {
      const items: T[] = [];
      let nextToken: string | undefined;
      do {
        const want = opts.max === undefined ? 250 : Math.min(250, opts.max - items.length);
        const page = await request<Record<string, unknown>>('GET', p, {
          query: { ...opts.query, maxResults: want, nextToken },
        });
        const got = page?.[key];
        if (Array.isArray(got)) items.push(...(got as T[]));
        nextToken = typeof page?.nextToken === 'string' && page.nextToken !== '' ? page.nextToken : undefined;
      } while (nextToken !== undefined && (opts.max === undefined || items.length < opts.max));
      return items;
    },
    async stream(p: string, signal: AbortSignal): Promise<Response | undefined> {
      const res = await send(`${api}${p}`, { headers: headers({ accept: 'text/event-stream' }), signal });
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      if (!res.ok || !res.body) {
        const text = await res.text();
        let message = `GET ${p} answered ${res.status}`;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not JSON: keep the status line
        }
        throw new ApiError(message, res.status, res.headers.get('x-amzn-errortype') ?? undefined);
      }
      return res;
    },
  };
}
