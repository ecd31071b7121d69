import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { ServiceAccountInfo } from './types.js';

// The cluster's PKI: openssl for certificates, node:crypto for keys. Kept in the run directory and
// reused on the next start; a missing CA starts it afresh.

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** The user (certificate CN) the API server is as a client of kubelets (logs, exec, port-forward), as kubeadm names it. */
export const APISERVER_KUBELET_CLIENT = 'kube-apiserver-kubelet-client';

export interface CertSpec {
  cn: string;
  o?: string[];
  usage: 'server' | 'client' | 'both';
  dns?: string[];
  ips?: string[];
}

async function ecKey(path: string): Promise<void> {
  const { privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  await writeFile(path, privateKey, { mode: 0o600 });
}

function dnSection(cn: string, o: string[] = []): string {
  // Numbered O entries give a subject with several organizations (= several groups).
  return ['[dn]', ...o.map((org, i) => `${i}.O = ${org}`), `CN = ${cn}`].join('\n');
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new ShoalError(`openssl ${args[0]} failed: ${errorMessage(err)} ${stderr}`, 'apt-get install openssl');
  }
}

export class Pki {
  constructor(readonly dir: string) {}

  path(name: string, ext: 'crt' | 'key' | 'pub'): string {
    return join(this.dir, `${name}.${ext}`);
  }

  has(name: string): boolean {
    return existsSync(this.path(name, 'crt')) && existsSync(this.path(name, 'key'));
  }

  async ca(name: string, cn: string): Promise<void> {
    if (this.has(name)) return;
    await ecKey(this.path(name, 'key'));
    const cfg = join(this.dir, `${name}.cnf`);
    await writeFile(
      cfg,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        dnSection(cn),
        '[ext]',
        'basicConstraints = critical,CA:TRUE',
        'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    await openssl([
      'req', '-x509', '-new', '-config', cfg, '-extensions', 'ext', '-key', this.path(name, 'key'),
      '-sha256', '-days', '3650', '-set_serial', serial(), '-out', this.path(name, 'crt'),
    ]);
    await rm(cfg, { force: true });
  }

  async leaf(name: string, caName: string, spec: CertSpec): Promise<void> {
    if (this.has(name)) return;
    await ecKey(this.path(name, 'key'));
    const cfg = join(this.dir, `${name}.cnf`);
    const csr = join(this.dir, `${name}.csr`);
    const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[spec.usage];
    const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((ip) => `IP:${ip}`)];
    await writeFile(
      cfg,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        dnSection(spec.cn, spec.o),
        '[ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage = ${eku}`,
        'authorityKeyIdentifier = keyid',
        ...(sans.length ? [`subjectAltName = ${sans.join(',')}`] : []),
        '',
      ].join('\n'),
    );
    await openssl(['req', '-new', '-config', cfg, '-key', this.path(name, 'key'), '-out', csr]);
    await openssl([
      'x509', '-req', '-in', csr, '-CA', this.path(caName, 'crt'), '-CAkey', this.path(caName, 'key'),
      '-set_serial', serial(), '-sha256', '-days', '3650', '-extfile', cfg, '-extensions', 'ext',
      '-out', this.path(name, 'crt'),
    ]);
    await rm(cfg, { force: true });
    await rm(csr, { force: true });
  }

  async rsaKeyPair(name: string): Promise<void> {
    if (existsSync(this.path(name, 'key')) && existsSync(this.path(name, 'pub'))) return;
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await writeFile(this.path(name, 'key'), privateKey, { mode: 0o600 });
    await writeFile(this.path(name, 'pub'), publicKey);
  }
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return `0x${bytes.toString('hex')}`;
}

/** Every certificate and key the control plane runs with, made once (what exists is kept). */
export async function ensureClusterPki(dir: string, usersDir: string): Promise<Pki> {
  const pki = new Pki(dir);
  if (!pki.has('ca')) {
    // A new cluster CA invalidates every certificate signed by an old one.
    await rm(dir, { recursive: true, force: true });
    await mkdir(usersDir, { recursive: true });
  }
  await pki.ca('ca', 'shoal-local-ca');
  await pki.ca('front-proxy-ca', 'shoal-local-front-proxy-ca');
  await pki.leaf('apiserver', 'ca', {
    cn: 'kube-apiserver',
    usage: 'server',
    ips: ['127.0.0.1', '10.96.0.1'],
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
  });
  await pki.leaf('front-proxy-client', 'front-proxy-ca', { cn: 'front-proxy-client', usage: 'client' });
  await pki.leaf('apiserver-kubelet-client', 'ca', { cn: APISERVER_KUBELET_CLIENT, o: ['system:masters'], usage: 'client' });
  await pki.leaf('admin', 'ca', { cn: 'shoal-admin', o: ['system:masters'], usage: 'client' });
  await pki.leaf('controller-manager', 'ca', { cn: 'system:kube-controller-manager', usage: 'client' });
  await pki.leaf('scheduler', 'ca', { cn: 'system:kube-scheduler', usage: 'client' });
  await pki.rsaKeyPair('sa');
  return pki;
}

/** The ServiceAccount token keys of the PKI and the issuer they sign for. */
export function serviceAccountOf(pki: Pki): ServiceAccountInfo {
  return {
    keyPath: pki.path('sa', 'key'),
    publicKeyPath: pki.path('sa', 'pub'),
    issuer: 'https://kubernetes.default.svc.cluster.local',
  };
}
