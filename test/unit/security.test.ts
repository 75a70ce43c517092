import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { computeSignature, EMPTY_SHA256, parseSigV4Authorization } from '../../src/http/sigv4.js';
import { roleAllows } from '../../src/http/auth.js';
import { createTopicAcl, OPERATOR_PREFIX } from '../../broker/acl.js';
import { limitPacketSize } from '../../broker/packet-limit.js';
import { createRateLimiter } from '../../src/service/token-bucket.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { hashSecret, verifySecret } from '../../src/service/secret-hash.js';

describe('SigV4 verification', () => {
  const credentials = { accessKeyId: 'FJABCDEFGHIJKLMNOPQR', secretAccessKey: 'secret/with+odd=chars' };
  const sign = async (path: string, query: Record<string, string | string[]>, body?: string) => {
    const signer = new SignatureV4({ credentials, region: 'local', service: 'iot', sha256: Sha256 });
    const signed = await signer.sign(
      {
        method: body === undefined ? 'GET' : 'PUT',
        protocol: 'http:',
        hostname: 'h',
        path,
        query,
        headers: { host: 'h:1', 'x-custom': '  a   b ' },
        ...(body === undefined ? {} : { body }),
      },
      { signingDate: new Date('2026-01-01T00:00:00Z') },
    );
    return signed.headers as Record<string, string>;
  };
  const verify = (method: string, url: string, headers: Record<string, string>, payloadHash: string) => {
    const auth = parseSigV4Authorization(headers.authorization as string);
    if (!auth) throw new Error('unparsable');
    return (
      computeSignature(
        { method, url, headers, payloadHash },
        auth,
        headers['x-amz-date'] as string,
        credentials.secretAccessKey,
      ) === auth.signature
    );
  };

  it('reproduces the AWS SDK signature for encoded paths, repeated and escaped query parameters', async () => {
    const path = '/things/a%3Ab/jobs/j%20k';
    const query = { maxResults: '5', b: ['2', '1'], 'x y': 'a/b*c' };
    const headers = await sign(path, query);
    const url = `${path}?maxResults=5&b=2&b=1&x%20y=a%2Fb%2Ac`;
    expect(verify('GET', url, headers, EMPTY_SHA256)).toBe(true);
    expect(verify('GET', url.replace('=5', '=6'), headers, EMPTY_SHA256)).toBe(false);
    expect(verify('PUT', url, headers, EMPTY_SHA256)).toBe(false);
    expect(verify('GET', url, { ...headers, 'x-custom': 'other' }, EMPTY_SHA256)).toBe(false);
  });

  it('covers the body through x-amz-content-sha256', async () => {
    const headers = await sign('/jobs/j1', {}, '{"a":1}');
    const hash = headers['x-amz-content-sha256'] as string;
    expect(verify('PUT', '/jobs/j1', headers, hash)).toBe(true);
    expect(verify('PUT', '/jobs/j1', headers, EMPTY_SHA256)).toBe(false);
  });

  it('parses only well-formed AWS4-HMAC-SHA256 headers', () => {
    expect(
      parseSigV4Authorization(
        'AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, SignedHeaders=host, Signature=' +
          'a'.repeat(64),
      ),
    ).toMatchObject({ accessKeyId: 'a', region: 'r', service: 's' });
    for (const bad of [
      '',
      'Bearer x',
      'AWS4-HMAC-SHA256 ',
      'AWS4-HMAC-SHA256 Credential=a/2026/r/s/aws4_request, SignedHeaders=host, Signature=' + 'a'.repeat(64),
      'AWS4-HMAC-SHA256 Credential=a/20260101/r/s/x, SignedHeaders=host, Signature=' + 'a'.repeat(64),
      'AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, SignedHeaders=Host, Signature=' +
        'a'.repeat(64),
      'AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, SignedHeaders=host, Signature=zz',
    ]) {
      expect(parseSigV4Authorization(bad)).toBeUndefined();
    }
  });
});

describe('roles', () => {
  it('lets a viewer read, an operator change jobs and things, and only an admin touch operator keys', () => {
    expect(roleAllows('viewer', 'GET', '/jobs/:jobId')).toBe(true);
    expect(roleAllows('viewer', 'PUT', '/jobs/:jobId')).toBe(false);
    expect(roleAllows('viewer', 'GET', '/things/:thingName/credentials')).toBe(false);
    expect(roleAllows('operator', 'PUT', '/jobs/:jobId')).toBe(true);
    expect(roleAllows('operator', 'POST', '/things/:thingName/credentials')).toBe(true);
    expect(roleAllows('operator', 'GET', '/operator-keys')).toBe(false);
    expect(roleAllows('operator', 'DELETE', '/operator-keys/:accessKeyId')).toBe(false);
    expect(roleAllows('admin', 'DELETE', '/operator-keys/:accessKeyId')).toBe(true);
    expect(roleAllows('viewer', 'POST', undefined)).toBe(false);
  });
});

describe('topic ACL', () => {
  const acl = createTopicAcl(createTopicScheme());
  const own = '$aws/things/a/jobs';

  it('confines a device to its own root and its own request topics', () => {
    expect(acl.canSubscribe('a', `${own}/notify-next`)).toBe(true);
    expect(acl.canSubscribe('a', `${own}/#`)).toBe(true);
    expect(acl.canSubscribe('a', `${own}/+/update/accepted`)).toBe(true);
    for (const f of [
      '#',
      '$aws/#',
      '$aws/things/+/jobs/#',
      '$aws/things/b/jobs/notify',
      '$aws/events/#',
      '$SYS/#',
      `$share/g/${own}/notify`,
      '$aws/things/a/jobsx/#',
      '$aws/things/a',
    ]) {
      expect(acl.canSubscribe('a', f)).toBe(false);
    }
    expect(acl.canPublish('a', `${own}/start-next`)).toBe(true);
    expect(acl.canPublish('a', `${own}/j1/update`)).toBe(true);
    for (const t of [
      `${own}/notify`,
      `${own}/get/accepted`,
      '$aws/things/b/jobs/get',
      'other',
      '$aws/events/job/j/completed',
    ]) {
      expect(acl.canPublish('a', t)).toBe(false);
    }
  });

  it('lets an operator client read events and notifications but publish nothing', () => {
    const op = `${OPERATOR_PREFIX}FJABCDEFGHIJKLMNOPQR`;
    expect(acl.canSubscribe(op, '$aws/events/#')).toBe(true);
    expect(acl.canSubscribe(op, '$aws/things/+/jobs/notify')).toBe(true);
    expect(acl.canSubscribe(op, '$aws/things/a/jobs/get/accepted')).toBe(false);
    expect(acl.canSubscribe(op, '#')).toBe(false);
    expect(acl.canPublish(op, `${own}/get`)).toBe(false);
  });
});

describe('MQTT packet size limit', () => {
  const feed = (bytes: Buffer[], max: number) => {
    const conn = new PassThrough();
    let tooLarge = 0;
    limitPacketSize(conn, max, (size) => (tooLarge = size));
    const got: Buffer[] = [];
    for (const b of bytes) {
      conn.write(b);
      const chunk = conn.read() as Buffer | null;
      if (chunk) got.push(chunk);
    }
    return { got: Buffer.concat(got), tooLarge, destroyed: conn.destroyed };
  };

  it('passes packets up to the limit, split anywhere, and closes on a header announcing more', () => {
    const small = Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]);
    const ok = feed(
      [small.subarray(0, 1), small.subarray(1, 3), Buffer.concat([small.subarray(3), small])],
      5,
    );
    expect(ok).toEqual({ got: Buffer.concat([small, small]), tooLarge: 0, destroyed: false });
    // Remaining length 200 in two bytes (0xC8 0x01): 203 bytes in all.
    const big = feed([Buffer.from([0x30, 0xc8]), Buffer.from([0x01, 0x00])], 202);
    expect(big.tooLarge).toBe(203);
    expect(big.destroyed).toBe(true);
    expect(feed([Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])], 1_000_000).destroyed).toBe(true);
  });
});

describe('token bucket', () => {
  it('allows the burst, then the sustained rate, per key', () => {
    let now = 0;
    const limiter = createRateLimiter({ perSecond: 2, burst: 3 }, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]);
    expect(limiter.take('b')).toBe(true);
    expect(limiter.retryAfterSeconds('a')).toBe(1);
    now = 500;
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
  });
});

describe('security configuration', () => {
  it('refuses AUTH_MODE=off unless every listener binds to loopback', () => {
    expect(() => loadConfig({ AUTH_MODE: 'off', HTTP_HOST: '0.0.0.0' })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH_MODE: 'off', MQTT_HOST: '10.0.0.5' })).toThrow(/MQTT_HOST|10\.0\.0\.5/);
    expect(loadConfig({ AUTH_MODE: 'off', HTTP_HOST: '127.0.0.1', MQTT_HOST: '::1' }).authMode).toBe('off');
    expect(loadConfig({}).authMode).toBe('required');
  });

  it('parses rate limits as rate[/burst] and names the variable when one is wrong', () => {
    expect(loadConfig({ DEVICE_RATE_LIMIT: '5/9' }).deviceRateLimit).toEqual({ perSecond: 5, burst: 9 });
    expect(loadConfig({ OPERATOR_RATE_LIMIT: '10' }).operatorRateLimit).toEqual({ perSecond: 10, burst: 20 });
    expect(() => loadConfig({ DEVICE_RATE_LIMIT: 'fast' })).toThrow(/DEVICE_RATE_LIMIT/);
    expect(() => loadConfig({ OPERATOR_RATE_LIMIT: '0' })).toThrow(/OPERATOR_RATE_LIMIT/);
  });
});

describe('secret hashing', () => {
  it('verifies the secret it hashed and nothing else, and never throws on a malformed hash', async () => {
    const hash = await hashSecret('s3cret', { N: 1024, r: 8, p: 1 });
    expect(await verifySecret('s3cret', hash)).toBe(true);
    expect(await verifySecret('s3cret ', hash)).toBe(false);
    for (const bad of [
      '',
      'scrypt$1$8$1$a$b',
      'scrypt$99999999$8$1$AAAA$AAAA',
      hash.slice(0, -2),
      'bcrypt$x',
    ]) {
      expect(await verifySecret('s3cret', bad)).toBe(false);
    }
  });
});
