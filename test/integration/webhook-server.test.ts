// The webhook's HTTPS server in-process: TLS trusted through the generated ca.crt only, the review
// round trip, bad bodies, metrics, certificate reload, and the cluster wiring against a fake API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type RequestOptions } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { startWebhook, type StartedWebhook } from '../../webhook/start.js';
import type { WebhookConfig } from '../../webhook/cli.js';
import type { ClusterAccess, StoredSecret } from '../../webhook/cluster.js';
import { generateBundle, servingNames, writeCertDir } from '../../webhook/tls.js';
import { createLogger } from '../../common/log.js';
import { applied, review, stsPod, type ReviewResponse } from '../support/webhook-fixtures.js';

const log = createLogger({ component: 'test' }).child({}, { level: 'silent' });

interface Reply {
  status: number;
  body: string;
  cert: PeerCertificate;
}

/** One HTTPS request on a fresh connection (agent: false), trusting only `ca`. */
function call(url: string, ca: string, path: string, body?: string | Buffer, extra: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: body === undefined ? 'GET' : 'POST', ca, agent: false, headers: { 'content-type': 'application/json' }, ...extra }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), cert: (res.socket as TLSSocket).getPeerCertificate() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function config(certDir: string, over: Partial<WebhookConfig> = {}): WebhookConfig {
  return { port: 0, host: '127.0.0.1', certDir, service: 'shoal-webhook', namespace: 'shoal-system', agentImage: 'shoal/agent:it', agentPort: 8080, sidecarMode: 'container', ...over };
}

describe('webhook server (no cluster)', () => {
  let dir: string;
  let wh: StartedWebhook;
  let ca: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-wh-'));
    wh = await startWebhook(config(dir), { access: null, logger: log, certPollMs: 200 });
    ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  });
  afterAll(async () => {
    await wh?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves /healthz over TLS that a client trusting only the generated ca.crt accepts', async () => {
    expect(wh.caCert).toBe(ca);
    const r = await call(wh.url, ca, '/healthz');
    expect(r).toMatchObject({ status: 200, body: 'ok\n' });
    // The same certificate under the name "localhost" (the local cluster's other way in).
    expect((await call(`https://localhost:${wh.port}`, ca, '/healthz')).status).toBe(200);
  });

  it('is refused by a client that does not trust the CA', async () => {
    await expect(call(wh.url, '', '/healthz', undefined, { ca: undefined })).rejects.toThrow(/self-signed|unable to verify|self signed/i);
  });

  it('answers a labelled pod with a patch that injects, and the patched pod with none', async () => {
    const pod = stsPod();
    const r = await call(wh.url, ca, '/mutate/pods', JSON.stringify(review('Pod', pod)));
    expect(r.status).toBe(200);
    const res = (JSON.parse(r.body) as { response: ReviewResponse }).response;
    expect(res).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    const patched = applied(pod, res) as V1Pod;
    const names = patched.spec!.containers.map((c) => c.name);
    expect(names).toEqual(['tarantool', 'shoal-agent']); // container mode
    const again = await call(wh.url, ca, '/mutate/pods', JSON.stringify(review('Pod', patched)));
    expect((JSON.parse(again.body) as { response: ReviewResponse }).response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it.each([
    ['non-JSON', '/mutate/pods', 'hello', 400, /not valid JSON/],
    ['JSON that is no AdmissionReview', '/mutate/statefulsets', '{"a":1}', 400, /expected "AdmissionReview"/],
    ['a body over 3 MB', '/mutate/pods', Buffer.alloc(3 * 1024 * 1024 + 10, 0x20), 413, /over the 3 MB limit/],
    ['an unknown path', '/mutate/deployments', '{}', 404, /no route POST \/mutate\/deployments/],
  ])('answers %s with a JSON message (status %i)', async (_n, path, body, status, message) => {
    const r = await call(wh.url, ca, path, body);
    expect(r.status).toBe(status);
    expect((JSON.parse(r.body) as { message: string }).message).toMatch(message);
  });

  it('counts requests and latency by endpoint and outcome in /metrics', async () => {
    const text = (await call(wh.url, ca, '/metrics')).body;
    expect(text).toMatch(/shoal_webhook_requests_total\{endpoint="\/mutate\/pods",outcome="patched"\} 1/);
    expect(text).toMatch(/shoal_webhook_requests_total\{endpoint="\/mutate\/pods",outcome="allowed"\} 1/);
    expect(text).toMatch(/shoal_webhook_requests_total\{endpoint="\/mutate\/pods",outcome="bad-request"\} 2/);
    expect(text).toMatch(/shoal_webhook_request_duration_seconds_bucket\{le="0.005",endpoint="\/mutate\/pods",outcome="patched"\}/);
  });

  it('reloads the certificate when the files change: new connections see the new one', async () => {
    const before = (await call(wh.url, ca, '/healthz')).cert.fingerprint256;
    const next = await generateBundle(servingNames('shoal-webhook', 'shoal-system'));
    await writeCertDir(dir, next);
    const deadline = Date.now() + 10_000;
    let seen = before;
    while (seen === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      seen = await call(wh.url, next.caCert, '/healthz').then((r) => r.cert.fingerprint256, () => before);
    }
    expect(seen).not.toBe(before);
    await expect(call(wh.url, ca, '/healthz')).rejects.toThrow(); // the old CA no longer vouches for it
    expect(wh.caCert).toBe(next.caCert);
  });
});

describe('webhook server in a (fake) cluster', () => {
  it('keeps its certificate in the Secret, serves it, and sets the caBundle', async () => {
    const secrets = new Map<string, StoredSecret>();
    const webhooks = [{ name: 'statefulsets.shoal.dev', caBundle: '' }, { name: 'pods.shoal.dev', caBundle: '' }];
    const access: ClusterAccess = {
      serverVersion: async () => ({ major: 1, minor: 20, gitVersion: 'v1.20.2' }),
      readSecret: async (_ns, name) => secrets.get(name) ?? null,
      createSecret: async (_ns, name, data) => (secrets.has(name) ? 'exists' : (secrets.set(name, { data, resourceVersion: '1' }), 'created')),
      replaceSecret: async () => 'conflict',
      readCaBundles: async () => structuredClone(webhooks),
      patchCaBundles: async (_c, ws, pem) => ws.forEach((w) => (webhooks[w.index]!.caBundle = pem)),
    };
    const dirs = [await mkdtemp(join(tmpdir(), 'shoal-wh-a-')), await mkdtemp(join(tmpdir(), 'shoal-wh-b-'))];
    const [a, b] = await Promise.all(dirs.map((d) => startWebhook(config(d, { sidecarMode: 'auto', webhookConfig: 'shoal-webhook' }), { access, logger: log })));
    try {
      expect(a!.sidecar.mode).toBe('container'); // 1.20 has no native sidecars
      const ca = secrets.get('shoal-webhook-tls')!.data['ca.crt']!;
      expect(a!.caCert).toBe(ca);
      expect(b!.caCert).toBe(ca); // two replicas, one CA
      expect(webhooks.map((w) => w.caBundle)).toEqual([ca, ca]);
      for (const wh of [a!, b!]) expect((await call(wh.url, ca, '/healthz')).status).toBe(200);
    } finally {
      await Promise.all([a?.close(), b?.close()]);
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});
