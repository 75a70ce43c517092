import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { statusValue, TailBuffer } from '../../agent/output.js';
import { STATUS_DETAILS_VALUE_PATTERN } from '../../src/protocol/limits.js';

const valid = new RegExp(STATUS_DETAILS_VALUE_PATTERN, 'u');

describe('output trimming', () => {
  it('keeps the last 1024 characters with control characters removed', () => {
    const text = `${'x'.repeat(5000)}\u0000end\r\n\tline\u001b[0m`;
    const value = statusValue(text) as string;
    expect(Array.from(value)).toHaveLength(1024);
    expect(value.endsWith('end line [0m')).toBe(true);
    expect(valid.test(value)).toBe(true);
  });

  it('gives no value for output with nothing printable, since empty values are invalid', () => {
    expect(statusValue('\n\u0000\t ')).toBeUndefined();
  });

  it('always yields a value the service accepts, whatever the output', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 0x10ffff }), { maxLength: 1500 }).map((cps) => String.fromCodePoint(...cps)),
        (text) => {
          const value = statusValue(text);
          if (value !== undefined) expect(valid.test(value)).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('holds a bounded tail of a megabyte stream and decodes characters split across chunks', () => {
    const tail = new TailBuffer();
    for (let i = 0; i < 1024; i++) tail.write(Buffer.from('y'.repeat(1023) + '\n'));
    const euro = Buffer.from('tail €');
    tail.write(euro.subarray(0, euro.length - 1));
    tail.write(euro.subarray(euro.length - 1));
    const text = tail.toString();
    expect(text.length).toBeLessThanOrEqual(4096);
    expect(text.endsWith('tail €')).toBe(true);
  });
});
