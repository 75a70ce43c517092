import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

/**
 * [protocol §5] Lists paginate with maxResults (1–250) and an opaque nextToken: the key of the last item of the page,
 * base64url-encoded JSON, tagged with the list it belongs to so a token of one list is refused by another.
 */
export function encodeToken(list: string, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

export function decodeToken(
  list: string,
  token: string | undefined,
  types: readonly ('string' | 'number')[],
) {
  if (token === undefined || token === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== list ||
    parsed.length !== types.length + 1 ||
    !types.every((t, i) => typeof parsed[i + 1] === t)
  ) {
    throw new FleetJobsError(
      'InvalidRequest',
      'nextToken is not valid; pass the nextToken of the previous page',
    );
  }
  return parsed.slice(1) as (string | number)[];
}

export function pageLimit(maxResults: number | undefined): number {
  const n = maxResults ?? LIMITS.DEFAULT_LIST_RESULTS;
  if (!Number.isInteger(n) || n < LIMITS.MIN_LIST_RESULTS || n > LIMITS.MAX_LIST_RESULTS) {
    throw new FleetJobsError(
      'InvalidRequest',
      `maxResults must be an integer from ${LIMITS.MIN_LIST_RESULTS} to ${LIMITS.MAX_LIST_RESULTS}`,
    );
  }
  return n;
}

/** Rows were fetched with limit + 1: the page, and the token of its last item when more follow. */
export function page<R>(
  rows: R[],
  limit: number,
  list: string,
  key: (row: R) => readonly (string | number)[],
): { items: R[]; nextToken?: string } {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, nextToken: encodeToken(list, key(items[items.length - 1] as R)) };
}
