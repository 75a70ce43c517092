/** The operator API client: every call carries the operator key from session storage as a Bearer token. */

const KEY = 'fleetjobs.operatorKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}
export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}
export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}

export function authHeaders(key: string | null = storedKey()): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** An error answer of the API: its status, the AWS error name and the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called on a 401: the key is missing, wrong or was revoked. */
let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(handler: (message: string) => void): void {
  onUnauthorized = handler;
}
export function reportUnauthorized(message: string): void {
  onUnauthorized(message);
}

export async function api<T>(
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  key: string | null = storedKey(),
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders(key) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NetworkError', 'the server cannot be reached');
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const message =
      (json as { message?: unknown } | undefined)?.message ?? `${res.status} ${res.statusText || 'error'}`;
    const error = new ApiError(
      res.status,
      res.headers.get('x-amzn-errortype') ?? 'Error',
      typeof message === 'string' ? message : String(message),
    );
    if (res.status === 401) onUnauthorized(error.message);
    throw error;
  }
  return json as T;
}

/** A path segment, encoded. */
export const seg = encodeURIComponent;

/** A query string from the members that are set. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
