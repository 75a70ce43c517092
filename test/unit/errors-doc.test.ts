import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/protocol/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [
    ...doc.matchAll(/^\| `([A-Za-z]+)` \| `([A-Za-z]+)` \| (\d{3}) \| `([A-Za-z]+)` \| (.*) \|$/gm),
  ];

  it('lists every entry of the error catalog with its AWS name, status, MQTT code and message, and nothing else', () => {
    const documented = Object.fromEntries(
      rows.map((m) => [
        m[1] as string,
        {
          name: m[2],
          statusCode: Number(m[3]),
          mqttCode: m[4],
          message: (m[5] as string).replace(/\\\|/g, '|'),
        },
      ]),
    );
    expect(documented).toEqual(ERRORS);
  });
});
