import { afterAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleProblems, generateBundle, readCertDir, renewServing, servingNames, writeCertDir } from '../../webhook/tls.js';

const NAMES = servingNames('shoal-webhook', 'shoal-system');
const DAY = 24 * 3600 * 1000;
// DER of the OID ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_SHA256 = Buffer.from('06082a8648ce3d040302', 'hex');

describe('certificates', async () => {
  const bundle = await generateBundle(NAMES);
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('covers the Service names, localhost and 127.0.0.1, and nothing is wrong with it', () => {
    expect(NAMES).toEqual([
      'shoal-webhook',
      'shoal-webhook.shoal-system',
      'shoal-webhook.shoal-system.svc',
      'shoal-webhook.shoal-system.svc.cluster.local',
      'localhost',
      '127.0.0.1',
    ]);
    const cert = new X509Certificate(bundle.cert);
    expect(cert.subjectAltName).toContain('DNS:shoal-webhook.shoal-system.svc');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(bundleProblems(bundle, NAMES)).toEqual([]);
  });

  it('is EC P-256 signed with SHA-256 by a CA that is a CA', () => {
    const cert = new X509Certificate(bundle.cert);
    const ca = new X509Certificate(bundle.caCert);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.raw.includes(ECDSA_SHA256)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
  });

  it('names its problems: other names, a foreign key, a foreign CA, expiry', async () => {
    expect(bundleProblems(bundle, ['other.example'])).toEqual(['tls.crt does not cover other.example']);
    const other = await generateBundle(NAMES);
    expect(bundleProblems({ ...bundle, key: other.key }, NAMES)).toEqual(['tls.key does not belong to tls.crt']);
    expect(bundleProblems({ ...bundle, caCert: other.caCert }, NAMES)).toEqual(['tls.crt is not signed by ca.crt']);
    expect(bundleProblems(bundle, NAMES, new Date(Date.now() + 720 * DAY))[0]).toMatch(/^tls.crt ends/);
    expect(bundleProblems({ cert: 'junk', key: 'junk' }, NAMES)[0]).toMatch(/cannot be read/);
  });

  it('renews the serving certificate under the same CA', async () => {
    const later = new Date(Date.now() + 720 * DAY);
    const renewed = await renewServing(bundle, NAMES, later);
    expect(renewed.caCert).toBe(bundle.caCert);
    expect(renewed.cert).not.toBe(bundle.cert);
    expect(bundleProblems(renewed, NAMES, later)).toEqual([]);
  });

  it('writes tls.crt, tls.key and ca.key (owner-only) and ca.crt, and reads them back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-certs-'));
    dirs.push(dir);
    expect(await readCertDir(dir)).toBeNull();
    await writeCertDir(dir, bundle);
    expect(await readCertDir(dir)).toEqual(bundle);
    expect((await stat(join(dir, 'tls.key'))).mode & 0o777).toBe(0o600);
    // The CA key signs mesh certificates (webhook/mesh-ca.ts): only its owner reads it.
    expect((await stat(join(dir, 'ca.key'))).mode & 0o777).toBe(0o600);
  });
});
