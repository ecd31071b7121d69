// The agent's certificate client (agent/mesh/certificates.ts) against the webhook's real HTTPS server
// and mesh-CA route, with the API server's two answers (TokenReview, the pod) played by the test:
// a certificate for the agent's own key and pod, the token re-read at every request, refusals
// retried with backoff and logged with their fix until the signal aborts, and a certificate from a
// CA the agent does not trust refused.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { V1Pod, V1TokenReviewStatus } from '@kubernetes/client-node';
import { MeshCertificates } from '../../agent/mesh/certificates.js';
import { meshIdentityFromSan } from '../../common/mesh-identity.js';
import { MESH_CA_AUDIENCE } from '../../common/names.js';
import { issueMeshCertificate, POD_NAME_EXTRA, POD_UID_EXTRA } from '../../webhook/mesh-ca.js';
import { startWebhookServer, type WebhookServer } from '../../webhook/server.js';
import { generateBundle } from '../../webhook/tls.js';
import { OPTS } from '../support/webhook-fixtures.js';
import { captureLogger, type LogLine } from '../support/mesh.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A webhook whose API server knows one token per pod ("token-<pod>"), each pod labelled cluster demo. */
async function meshCa(signWith?: { cert: string; key: string }) {
  const b = await generateBundle(['127.0.0.1']);
  const reviewed: string[] = [];
  const logs: LogLine[] = [];
  const server: WebhookServer = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    cert: b.cert,
    key: b.key,
    inject: OPTS,
    logger: captureLogger(logs),
    meshCa: {
      review: async (token): Promise<V1TokenReviewStatus> => {
        reviewed.push(token);
        const pod = /^token-(.+)$/.exec(token)?.[1];
        if (!pod) return { authenticated: false };
        return { authenticated: true, audiences: [MESH_CA_AUDIENCE], user: { username: 'system:serviceaccount:default:shoal-agent', extra: { [POD_NAME_EXTRA]: [pod], [POD_UID_EXTRA]: [`uid-${pod}`] } } };
      },
      getPod: async (_ns, name): Promise<V1Pod> => ({ metadata: { name, uid: `uid-${name}`, labels: { 'shoal.dev/cluster': 'demo' } } }),
      ca: () => signWith ?? { cert: b.caCert, key: b.caKey },
      logger: captureLogger(logs),
    },
  });
  cleanups.push(() => server.close(100));
  const dir = await mkdtemp(join(tmpdir(), 'shoal-mesh-token-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { url: server.url, caCert: b.caCert, caKey: b.caKey, reviewed, logs, tokenFile: join(dir, 'token') };
}

describe('the agent\'s mesh certificate client', () => {
  it('gets a certificate for its own key naming its pod, re-reading the token at every request', async () => {
    const ca = await meshCa();
    await writeFile(ca.tokenFile, 'token-storage-0\n');
    const agentLogs: LogLine[] = [];
    const certs = new MeshCertificates({ url: ca.url, caCert: ca.caCert, tokenFile: ca.tokenFile, logger: captureLogger(agentLogs) });
    const first = await certs.obtain(AbortSignal.timeout(5_000));
    const cert = new X509Certificate(first.cert);
    expect(meshIdentityFromSan(cert.subjectAltName)).toEqual({ namespace: 'default', cluster: 'demo', pod: 'storage-0' });
    expect(cert.checkPrivateKey(createPrivateKey(first.key))).toBe(true);
    expect(first.ca).toBe(ca.caCert);
    // The kubelet rotated the file: the next request shows the new token; the key stays the agent's.
    await writeFile(ca.tokenFile, 'token-storage-0-rotated');
    const second = await certs.obtain(AbortSignal.timeout(5_000));
    expect(ca.reviewed).toEqual(['token-storage-0', 'token-storage-0-rotated']);
    expect(second.key).toBe(first.key);
    expect(agentLogs.filter((l) => l.msg === 'got a mesh certificate')).toHaveLength(2);
  });

  it('retries a refusal with backoff, saying how to fix it, until the signal aborts', async () => {
    const ca = await meshCa();
    await writeFile(ca.tokenFile, 'not-a-pod-token');
    const agentLogs: LogLine[] = [];
    const certs = new MeshCertificates({ url: ca.url, caCert: ca.caCert, tokenFile: ca.tokenFile, logger: captureLogger(agentLogs), backoff: { initialMs: 50, maxMs: 100 } });
    const stop = new AbortController();
    const obtaining = certs.obtain(stop.signal);
    await new Promise((r) => setTimeout(r, 400));
    stop.abort(new Error('stopping'));
    await expect(obtaining).rejects.toThrow('stopping');
    const failures = agentLogs.filter((l) => l.msg === 'could not get a mesh certificate');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures[0]).toMatchObject({ err: expect.stringContaining('answered 401'), fix: expect.stringContaining('shoal-mesh-ca') });
    expect(ca.logs.some((l) => l.msg === 'refused a mesh certificate')).toBe(true);
  });

  it('renews a certificate past its half life at once, hands the new one over, and stops with the signal', async () => {
    const ca = await meshCa();
    await writeFile(ca.tokenFile, 'token-storage-1');
    const certs = new MeshCertificates({ url: ca.url, caCert: ca.caCert, tokenFile: ca.tokenFile, logger: captureLogger([]) });
    const fresh = await certs.obtain(AbortSignal.timeout(5_000));
    // The same key's certificate as if issued a day ago: seconds left, far past half life.
    const publicKey = createPublicKey(createPrivateKey(fresh.key));
    const old = { ...fresh, cert: await issueMeshCertificate({ cert: ca.caCert, key: ca.caKey }, publicKey, { namespace: 'default', cluster: 'demo', pod: 'storage-1' }, new Date(Date.now() - 24 * 3600_000 + 5_000)) };
    const renewed: string[] = [];
    const stop = new AbortController();
    const loop = certs.renewLoop(old, (c) => renewed.push(c.cert), stop.signal);
    const deadline = Date.now() + 5_000;
    while (renewed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(renewed).toHaveLength(1);
    expect(Date.parse(new X509Certificate(renewed[0]!).validTo) - Date.now()).toBeGreaterThan(23 * 3600_000);
    // The new one is fresh: the loop now sleeps ~12 h, until the signal ends it.
    stop.abort();
    await loop;
    expect(renewed).toHaveLength(1);
  });

  it('refuses a certificate that SHOAL_MESH_CA_CERT did not sign', async () => {
    const other = await generateBundle(['localhost']);
    const ca = await meshCa({ cert: other.caCert, key: other.caKey });
    await writeFile(ca.tokenFile, 'token-storage-0');
    const agentLogs: LogLine[] = [];
    const certs = new MeshCertificates({ url: ca.url, caCert: ca.caCert, tokenFile: ca.tokenFile, logger: captureLogger(agentLogs), backoff: { initialMs: 50, maxMs: 100 } });
    await expect(certs.obtain(AbortSignal.timeout(300))).rejects.toThrow();
    expect(agentLogs.find((l) => l.msg === 'could not get a mesh certificate')?.err).toContain('not signed by SHOAL_MESH_CA_CERT');
  });
});
