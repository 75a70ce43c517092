import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';

export interface Issued {
  cert: string;
  key: string;
}

export interface TestCa extends Issued {
  /** Issues a certificate with this CN signed by the CA (a server certificate also names 127.0.0.1). */
  issue(cn: string, options?: { server?: boolean }): Issued;
}

// node:crypto makes the keys and signs (native); forge only encodes the certificates, its JS RSA being slow.
function keyPair(): { pem: string; publicKey: forge.pki.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

/** One key for every leaf certificate: the tests are about who signed a certificate, and keygen is slow. */
let leafKey: ReturnType<typeof keyPair> | undefined;

function signWith(cert: forge.pki.Certificate, keyPem: string): void {
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption as string;
  cert.signatureOid = forge.pki.oids.sha256WithRSAEncryption as string;
  const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
  const tbs = Buffer.from(forge.asn1.toDer(pki.getTBSCertificate(cert)).getBytes(), 'binary');
  cert.signature = sign('sha256', tbs, keyPem).toString('binary');
}

function baseCert(publicKey: forge.pki.PublicKey, cn: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  return cert;
}

/** A throw-away certificate authority for mTLS tests. */
export function createTestCa(name: string): TestCa {
  const ca = keyPair();
  const caCert = baseCert(ca.publicKey, name);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
  ]);
  signWith(caCert, ca.pem);
  return {
    cert: forge.pki.certificateToPem(caCert),
    key: ca.pem,
    issue(cn, options = {}) {
      leafKey ??= keyPair();
      const k = leafKey;
      const cert = baseCert(k.publicKey, cn);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: options.server === true, clientAuth: options.server !== true },
        ...(options.server ? [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] : []),
      ]);
      signWith(cert, ca.pem);
      return { cert: forge.pki.certificateToPem(cert), key: k.pem };
    },
  };
}

/** Writes a server certificate and its CA into dir, as the TLS_CERT / TLS_KEY / TLS_CA settings of a server. */
export async function writeServerTls(
  dir: string,
  ca: Issued,
  server: Issued,
): Promise<{ tlsCert: string; tlsKey: string; tlsCa: string }> {
  const tls = {
    tlsCert: join(dir, 'server.crt'),
    tlsKey: join(dir, 'server.key'),
    tlsCa: join(dir, 'ca.crt'),
  };
  await Promise.all([
    writeFile(tls.tlsCert, server.cert),
    writeFile(tls.tlsKey, server.key),
    writeFile(tls.tlsCa, ca.cert),
  ]);
  return tls;
}
