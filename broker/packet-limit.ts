import type { Duplex } from 'node:stream';

/**
 * [SPEC 8] Caps the size of one MQTT packet. The packet parser buffers a whole packet before it looks at it (up to
 * 256 MB as the protocol allows), so the limit is enforced on the bytes as the broker reads them: a fixed
 * header announcing more than `maxBytes` closes the connection before the body arrives. MQTT 3.1.1 has no way
 * to tell the client why; the connection ends, as AWS IoT ends it for an oversized message.
 */
export function limitPacketSize(conn: Duplex, maxBytes: number, onTooLarge: (size: number) => void): void {
  // Scanner state: bytes of the current packet still to skip, or the fixed header being read.
  let skip = 0;
  let header: number[] = [];
  const scan = (buf: Buffer): boolean => {
    let i = 0;
    while (i < buf.length) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length - i);
        skip -= n;
        i += n;
        continue;
      }
      header.push(buf[i++] as number);
      if (header.length === 1) continue;
      const b = header[header.length - 1] as number;
      if ((b & 0x80) !== 0 && header.length < 5) continue;
      if ((b & 0x80) !== 0) return false; // [MQTT-2.2.3] a remaining length is at most 4 bytes
      let remaining = 0;
      for (let k = header.length - 1; k >= 1; k--)
        remaining = remaining * 128 + ((header[k] as number) & 0x7f);
      const size = header.length + remaining;
      header = [];
      if (size > maxBytes) {
        onTooLarge(size);
        return false;
      }
      skip = remaining;
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
