import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/protocol/limits.js';

describe('docs/limits.md', () => {
  const doc = readFileSync(new URL('../../docs/limits.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `([A-Z0-9_]+)` \| (\d+) \|/gm)].map((m) => [m[1] as string, Number(m[2])]),
  );

  it('lists every limit in LIMITS with its value, and nothing else', () => {
    expect(Object.fromEntries(rows)).toEqual({ ...LIMITS });
  });
});
