import { StringDecoder } from 'node:string_decoder';
import { LIMITS } from '../src/protocol/limits.js';

const CONTROL = /\p{C}+/gu;
const SPACES = /\s+/g;

/**
 * [protocol §7] A statusDetails value from free text: control characters (newlines included) become one space,
 * and only the last 1024 characters are kept, so a chatty step can never make the server reject the report.
 * Characters are counted as code points, as the server's `^[^\p{C}]{1,1024}$` does. Undefined when nothing
 * printable is left, because an empty value is invalid.
 */
export function statusValue(
  text: string,
  limit: number = LIMITS.MAX_STATUS_DETAILS_VALUE_CHARS,
): string | undefined {
  const clean = text.replace(CONTROL, ' ').replace(SPACES, ' ').trim();
  if (clean === '') return undefined;
  const points = Array.from(clean);
  return points.length <= limit ? clean : points.slice(-limit).join('').trimStart() || undefined;
}

/**
 * The tail of a byte stream as text, holding a bounded amount however much is written: 1 MB of output costs
 * a few KB of memory. Multi-byte characters split across chunks are decoded whole.
 */
export class TailBuffer {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly keep: number;

  constructor(limit: number = LIMITS.MAX_STATUS_DETAILS_VALUE_CHARS) {
    // Keep more than the limit: cleaning removes characters, and the tail must still be full afterwards.
    this.keep = limit * 4;
  }

  write(chunk: Buffer | string): void {
    this.text += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (this.text.length > this.keep * 2) this.text = this.text.slice(-this.keep);
  }

  toString(): string {
    return (this.text + this.decoder.end()).slice(-this.keep);
  }
}
