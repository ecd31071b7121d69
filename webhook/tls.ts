// The webhook's certificates: generate a CA and a serving certificate, check that a certificate still
// fits (names, expiry, key, issuer), and keep them as tls.crt / tls.key / ca.crt in --cert-dir.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export const CERT_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key' } as const;

/** PEM texts. `caKey` is known only for a CA this webhook generated (kept in the cluster Secret and in --cert-dir). */
export interface TlsBundle {
  cert: string;
  key: string;
  caCert?: string;
  caKey?: string;
}

const DAY_MS = 24 * 3600 * 1000;
const CA_DAYS = 3650;
const SERVING_DAYS = 730;
/** A certificate closer than this to its end is renewed at the next start or sync. */
export const RENEW_BEFORE_DAYS = 30;

/** What the serving certificate must cover: the Service's DNS names, and localhost/127.0.0.1 for a local cluster. */
export function servingNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, 'localhost', '127.0.0.1'];
}

const EC = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

async function servingCert(names: string[], ca: { cert: string; key: string }, now: Date) {
  const altNames = names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }));
  return generate([{ name: 'commonName', value: names[0] ?? 'shoal-webhook' }], {
    ...EC,
    ca,
    notBeforeDate: new Date(now.getTime() - 60_000), // tolerate small clock skew
    notAfterDate: new Date(now.getTime() + SERVING_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
}

/** A fresh CA and a serving certificate it signed for `names`. */
export async function generateBundle(names: string[], now = new Date()): Promise<Required<TlsBundle>> {
  const ca = await generate([{ name: 'commonName', value: 'shoal-webhook-ca' }], {
    ...EC,
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + CA_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const serving = await servingCert(names, { cert: ca.cert, key: ca.private }, now);
  return { cert: serving.cert, key: serving.private, caCert: ca.cert, caKey: ca.private };
}

/** A new serving certificate from the same CA: the caBundle stays valid, so no replica is cut off. */
export async function renewServing(bundle: Required<TlsBundle>, names: string[], now = new Date()): Promise<Required<TlsBundle>> {
  const serving = await servingCert(names, { cert: bundle.caCert, key: bundle.caKey }, now);
  return { ...bundle, cert: serving.cert, key: serving.private };
}

function expiring(cert: X509Certificate, now: Date): boolean {
  return new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS;
}

/** Why `bundle` cannot serve `names` (unreadable, wrong key, not from its CA, missing a name, expiring), or []. */
export function bundleProblems(bundle: TlsBundle, names: string[], now = new Date()): string[] {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(bundle.cert);
    if (!cert.checkPrivateKey(createPrivateKey(bundle.key))) return ['tls.key does not belong to tls.crt'];
  } catch (err) {
    return [`tls.crt or tls.key cannot be read (${(err as Error).message})`];
  }
  const problems: string[] = [];
  if (bundle.caCert !== undefined) {
    try {
      const ca = new X509Certificate(bundle.caCert);
      if (!cert.verify(ca.publicKey)) problems.push('tls.crt is not signed by ca.crt');
      if (expiring(ca, now)) problems.push(`ca.crt ends ${ca.validTo}`);
    } catch (err) {
      problems.push(`ca.crt cannot be read (${(err as Error).message})`);
    }
  }
  for (const n of names) {
    const covered = isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n, { wildcards: false }) !== undefined;
    if (!covered) problems.push(`tls.crt does not cover ${n}`);
  }
  if (expiring(cert, now)) problems.push(`tls.crt ends ${cert.validTo}`);
  return problems;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The bundle in `dir`, or null when tls.crt or tls.key is absent. */
export async function readCertDir(dir: string): Promise<TlsBundle | null> {
  const [cert, key, caCert, caKey] = await Promise.all(Object.values(CERT_FILES).map((f) => readIfExists(join(dir, f))));
  if (cert === undefined || key === undefined) return null;
  return { cert, key, ...(caCert !== undefined ? { caCert } : {}), ...(caKey !== undefined ? { caKey } : {}) };
}

/**
 * Writes each file atomically (rename), the keys readable by their owner only: ca.crt (and ca.key), then the key,
 * then the certificate, so a watcher firing in between sees a key/cert mismatch and waits.
 */
export async function writeCertDir(dir: string, b: TlsBundle): Promise<void> {
  await mkdir(dir, { recursive: true });
  const put = async (name: string, text: string, mode: number) => {
    const tmp = join(dir, `.${name}.tmp`);
    await writeFile(tmp, text, { mode });
    await rename(tmp, join(dir, name));
  };
  if (b.caCert !== undefined) await put(CERT_FILES.ca, b.caCert, 0o644);
  // The CA's key signs mesh certificates (mesh-ca.ts): readable by the webhook's user only.
  if (b.caKey !== undefined) await put(CERT_FILES.caKey, b.caKey, 0o600);
  // …and the certificate after it, so a watcher that fires between the two sees a mismatch and waits.
  await put(CERT_FILES.key, b.key, 0o600);
  await put(CERT_FILES.cert, b.cert, 0o644);
}

export function sameBundle(a: TlsBundle | null, b: TlsBundle | null): boolean {
  return !!a && !!b && a.cert === b.cert && a.key === b.key && (a.caCert ?? '') === (b.caCert ?? '');
}
