// The agent's mesh certificate (SPEC §4): a P-256 key made at start that never leaves this process,
// a certificate for it from the webhook's mesh CA (POST /mesh/certificate with the pod's projected
// token of audience shoal.dev/mesh-ca), renewed at half life (identity.ts). Each request is bounded;
// failures are retried with the repo's backoff until the signal aborts.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { MESH_CERTIFICATE_PATH } from '../../common/names.js';
import { Backoff, sleep, type BackoffPolicy } from '../../common/time.js';
import { renewalDelay } from './identity.js';
import type { MeshCredentials } from './server.js';

export interface MeshCertificatesOptions {
  /** The webhook, e.g. https://shoal-webhook.shoal-system.svc:443 (SHOAL_MESH_CA_URL). */
  url: string;
  /** The mesh CA (PEM, SHOAL_MESH_CA_CERT): checks the webhook's serving certificate and every peer. */
  caCert: string;
  /** The projected token of audience shoal.dev/mesh-ca; re-read at every request (the kubelet refreshes it). */
  tokenFile: string;
  logger: Logger;
  backoff?: BackoffPolicy;
  requestTimeoutMs?: number;
}

function hintFor(status: number): string {
  if (status === 401) return 'the agent container needs the projected volume shoal-mesh-ca (audience shoal.dev/mesh-ca): recreate the pod so the webhook injects it';
  if (status === 403) return 'the pod must exist with its shoal.dev/cluster label; check the webhook log for the reason';
  if (status === 404) return 'the webhook serves no mesh CA: run shoal-webhook with access to the cluster and its CA key';
  return 'the webhook or the API server is unavailable; the agent retries';
}

/** Where coordination gets its mesh credentials: the webhook (MeshCertificates), or a test's CA. */
export interface CertificateSource {
  obtain(signal: AbortSignal): Promise<MeshCredentials>;
  renewLoop(current: MeshCredentials, onRenewed: (c: MeshCredentials) => void, signal: AbortSignal): Promise<void>;
}

export class MeshCertificates implements CertificateSource {
  private readonly key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly keyPem = this.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  private readonly publicPem = this.key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  private readonly log: Logger;

  constructor(private readonly o: MeshCertificatesOptions) {
    this.log = o.logger.child({ module: 'mesh-certificate' });
  }

  /** A certificate for this agent's key, asked for until it comes or `signal` aborts. */
  async obtain(signal: AbortSignal): Promise<MeshCredentials> {
    const backoff = new Backoff(this.o.backoff ?? { initialMs: 500, maxMs: 30_000 });
    for (;;) {
      try {
        const c = await this.requestOnce(signal);
        const cert = new X509Certificate(c.cert);
        this.log.info({ subject: cert.subjectAltName, validTo: cert.validTo }, 'got a mesh certificate');
        return c;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const delay = backoff.next();
        this.log.warn({ err: errorMessage(err), fix: err instanceof ShoalError ? err.hint : undefined, retryInMs: delay, attempt: backoff.attempts }, 'could not get a mesh certificate');
        await sleep(delay, signal);
      }
    }
  }

  /** Renews `current` at half life, for ever, handing each new one to `onRenewed`; ends when `signal` aborts. */
  async renewLoop(current: MeshCredentials, onRenewed: (c: MeshCredentials) => void, signal: AbortSignal): Promise<void> {
    let cert = current;
    while (!signal.aborted) {
      const x = new X509Certificate(cert.cert);
      try {
        await sleep(renewalDelay(Date.parse(x.validFrom), Date.parse(x.validTo), Date.now()), signal);
        cert = await this.obtain(signal);
      } catch {
        return; // only an abort ends a sleep or obtain()
      }
      onRenewed(cert);
    }
  }

  private async requestOnce(signal: AbortSignal): Promise<MeshCredentials> {
    const token = (await readFile(this.o.tokenFile, 'utf8')).trim();
    const url = new URL(MESH_CERTIFICATE_PATH, this.o.url);
    const body = JSON.stringify({ publicKey: this.publicPem });
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        ca: this.o.caCert,
        minVersion: 'TLSv1.2',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.requestTimeoutMs ?? 10_000)]),
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    let parsed: { certificate?: unknown; ca?: unknown; message?: unknown } = {};
    try {
      parsed = JSON.parse(answer.text) as typeof parsed;
    } catch {
      // reported below with the status
    }
    if (answer.status !== 200 || typeof parsed.certificate !== 'string') {
      const why = typeof parsed.message === 'string' ? parsed.message : answer.text.slice(0, 200);
      throw new ShoalError(`the mesh CA at ${url.origin} answered ${answer.status}: ${why}`, hintFor(answer.status));
    }
    const cert = new X509Certificate(parsed.certificate);
    if (!cert.checkPrivateKey(this.key.privateKey)) throw new ShoalError('the mesh CA returned a certificate for another key', 'check SHOAL_MESH_CA_URL points at shoal-webhook');
    if (!cert.verify(new X509Certificate(this.o.caCert).publicKey)) throw new ShoalError('the mesh certificate is not signed by SHOAL_MESH_CA_CERT', 'recreate the pod so it gets the webhook\'s current CA');
    return { key: this.keyPem, cert: parsed.certificate, ca: this.o.caCert };
  }
}
