import type { Duplex } from 'node:stream';

/**
 * [protocol §8] Caps the size of one MQTT packet. The packet parser buffers a whole packet before it looks at it (up to
 * 256 MB as the protocol allows), so the limit is enforced on the bytes as the broker reads them: a fixed
 * header announcing more than `maxBytes` closes the connection before the body arrives. MQTT 3.1.1 has no way
 * to tell the client why; the connection ends, as AWS IoT ends it for an oversized message.
 */
export function limitPacketSize(conn: Duplex, maxBytes: number, onTooLarge: (size: number) => void): void {
  // Scanner state: bytes of the current packet still to skip, or the fixed header being read (how many of its
  // bytes were seen, and the remaining length they announce so far). Numbers only: this runs on every read.
  let skip = 0;
  let headerBytes = 0;
  let remaining = 0;
  let multiplier = 1;
  const scan = (buf: Buffer): boolean => {
    let i = 0;
    while (i < buf.length) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length - i);
        skip -= n;
        i += n;
        continue;
      }
      const b = buf[i++] as number;
      headerBytes++;
      if (headerBytes === 1) continue; // the packet type and flags
      remaining += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) !== 0) {
        if (headerBytes < 5) continue;
        return false; // [MQTT-2.2.3] a remaining length is at most 4 bytes
      }
      const size = headerBytes + remaining;
      if (size > maxBytes) {
        onTooLarge(size);
        return false;
      }
      skip = remaining;
      headerBytes = 0;
      remaining = 0;
      multiplier = 1;
    }
    return true;
  };
  const read = conn.read.bind(conn);
  conn.read = (size?: number) => {
    const chunk = read(size) as Buffer | string | null;
    if (chunk === null || typeof chunk === 'string') return chunk;
    if (!scan(chunk)) {
      conn.destroy();
      return null;
    }
    return chunk;
  };
}
