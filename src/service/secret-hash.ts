import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Slow hashing of secrets with scrypt from node:crypto (OpenSSL's implementation, maintained with Node itself).
 * The encoded form carries its parameters and salt, "scrypt$N$r$p$salt$hash", so they can be raised later while
 * old hashes keep verifying.
 */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** ~50 ms on one core here: cheap enough per connect (verified secrets are cached), costly for an offline guesser. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 16_384, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const MAX_N = 1 << 20;

function scryptAsync(secret: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(secret, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** False for a wrong secret and for a malformed hash; never throws on input. */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every(Number.isSafeInteger) || N < 2 || N > MAX_N || r < 1 || r > 32 || p < 1 || p > 16) {
    return false;
  }
  const salt = Buffer.from(parts[4] as string, 'base64url');
  const expected = Buffer.from(parts[5] as string, 'base64url');
  if (expected.length !== KEY_BYTES) return false;
  const actual = await scryptAsync(secret, salt, { N, r, p });
  return timingSafeEqual(actual, expected);
}

/** A random secret of 256 bits, URL- and header-safe. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function generateSalt(): string {
  return randomBytes(SALT_BYTES).toString('base64url');
}

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHmac('sha256', 'fleetjobs-compare').update(a).digest();
  const hb = createHmac('sha256', 'fleetjobs-compare').update(b).digest();
  return timingSafeEqual(ha, hb);
}
