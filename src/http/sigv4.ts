import { createHash, createHmac } from 'node:crypto';
import { safeEqual } from '../service/secret-hash.js';

/**
 * AWS Signature Version 4 verification (Authorization header form), written from the SigV4 specification and
 * checked against @aws-sdk/client-iot: canonical request -> string to sign -> signing key -> signature. The
 * server recomputes the signature over what it received, so any change to the method, path, query, signed
 * headers or body breaks it; X-Amz-Date must be within the allowed clock skew, which bounds replays.
 */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SigV4Authorization {
  accessKeyId: string;
  /** yyyymmdd */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Parses `AWS4-HMAC-SHA256 Credential=id/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex`. */
export function parseSigV4Authorization(header: string): SigV4Authorization | undefined {
  if (!header.startsWith(`${SIGV4_ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.slice(SIGV4_ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential')?.split('/');
  const signedHeaders = fields.get('SignedHeaders')?.split(';');
  const signature = fields.get('Signature');
  if (credential?.length !== 5 || credential[4] !== 'aws4_request' || !signedHeaders || !signature)
    return undefined;
  const [accessKeyId, date, region, service] = credential as [string, string, string, string];
  if (!/^\d{8}$/.test(date) || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  if (signedHeaders.some((h) => !/^[a-z0-9-]+$/.test(h))) return undefined;
  return { accessKeyId, date, region, service, signedHeaders, signature };
}

/** `20260101T000000Z` -> Date, or undefined. */
export function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** RFC 3986 encoding as the AWS SDKs apply it: everything but unreserved characters. */
function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The path as sent, with empty and dot segments normalised, each byte escaped once more (SigV4 for non-S3). */
export function canonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const s of rawPath.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  const normalized = `${rawPath.startsWith('/') ? '/' : ''}${segments.join('/')}${
    segments.length > 0 && rawPath.endsWith('/') ? '/' : ''
  }`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

/** Parameters decoded then re-encoded, sorted by key then value; a parameter without `=` is left out as the SDK does. */
export function canonicalQuery(rawQuery: string): string {
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    pairs.push([escapeUri(decode(part.slice(0, eq))), escapeUri(decode(part.slice(eq + 1)))]);
  }
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export interface SignedRequest {
  method: string;
  /** Path and query exactly as on the request line. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Hex SHA-256 of the body (EMPTY_SHA256 for none). */
  payloadHash: string;
}

export function canonicalRequest(req: SignedRequest, signedHeaders: readonly string[]): string {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const headerLines = signedHeaders.map((name) => {
    const value = req.headers[name];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    return `${name}:${text
      .replace(/[\r\n]/g, ' ')
      .replace(/[ \t]+/g, ' ')
      .trim()}`;
  });
  return [
    req.method,
    canonicalPath(rawPath),
    canonicalQuery(rawQuery),
    headerLines.join('\n'),
    '',
    signedHeaders.join(';'),
    req.payloadHash,
  ].join('\n');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

export function computeSignature(
  req: SignedRequest,
  auth: Omit<SigV4Authorization, 'signature' | 'accessKeyId'>,
  amzDate: string,
  secret: string,
): string {
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const hashed = createHash('sha256').update(canonicalRequest(req, auth.signedHeaders), 'utf8').digest('hex');
  const stringToSign = [SIGV4_ALGORITHM, amzDate, scope, hashed].join('\n');
  return createHmac('sha256', signingKey(secret, auth.date, auth.region, auth.service))
    .update(stringToSign, 'utf8')
    .digest('hex');
}

export function signatureMatches(expected: string, given: string): boolean {
  return safeEqual(expected, given);
}

/** A SigV4 request whose headers passed the checks; its signature is checked once the body hash is known. */
export interface SigV4Claim {
  auth: SigV4Authorization;
  amzDate: string;
  /** The signed x-amz-content-sha256, if the client sent one. */
  claimedHash: string | undefined;
}

/**
 * The checks that need no secret: a well-formed Authorization, a signed X-Amz-Date within `skewMs` of `now`,
 * a signed host, a scope date matching X-Amz-Date, a well-formed x-amz-content-sha256. A string is the reason
 * for refusing.
 */
export function readSigV4Claim(
  headers: Record<string, string | string[] | undefined>,
  now: Date,
  skewMs: number,
): SigV4Claim | string {
  const auth = parseSigV4Authorization(
    typeof headers.authorization === 'string' ? headers.authorization : '',
  );
  if (auth === undefined) {
    return 'Authorization is neither Bearer nor a well-formed AWS4-HMAC-SHA256 signature';
  }
  const amzDate = headers['x-amz-date'];
  const signedAt = typeof amzDate === 'string' ? parseAmzDate(amzDate) : undefined;
  if (typeof amzDate !== 'string' || signedAt === undefined || !auth.signedHeaders.includes('x-amz-date')) {
    return 'a SigV4 request must sign an X-Amz-Date header (yyyymmddThhmmssZ)';
  }
  if (!auth.signedHeaders.includes('host') || amzDate.slice(0, 8) !== auth.date) {
    return 'the signature must cover host, and its scope date must match X-Amz-Date';
  }
  if (Math.abs(now.getTime() - signedAt.getTime()) > skewMs) {
    return `X-Amz-Date is more than ${skewMs / 1000} s from the server clock; sign again with a correct clock`;
  }
  const claimed = headers['x-amz-content-sha256'];
  if (claimed !== undefined && (typeof claimed !== 'string' || !/^[0-9a-f]{64}$/.test(claimed))) {
    return 'x-amz-content-sha256 must be the hex SHA-256 of the body';
  }
  return { auth, amzDate, claimedHash: claimed };
}

/** True when the claim's signature is the one `secret` makes over the request with this body hash. */
export function verifySigV4(
  req: Omit<SignedRequest, 'payloadHash'>,
  claim: SigV4Claim,
  payloadHash: string,
  secret: string,
): boolean {
  if (claim.claimedHash !== undefined && claim.claimedHash !== payloadHash) return false;
  return signatureMatches(
    computeSignature({ ...req, payloadHash }, claim.auth, claim.amzDate, secret),
    claim.auth.signature,
  );
}
