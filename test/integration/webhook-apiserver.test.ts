// The webhook against a real Kubernetes 1.20 API server (the local control plane): its own RBAC from
// manifests/ is enough to create the certificate Secret and fix the caBundle; the API server calls it
// for a labelled StatefulSet and for the pods the StatefulSet controller creates, and accepts the
// patches; the agents' RBAC template works in a user namespace. Skipped when the Kubernetes binaries
// have not been built (scripts/provision-kubernetes.sh).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { AuthenticationV1TokenRequest, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { meshIdentityFromSan } from '../../common/mesh-identity.js';
import { MESH_CA_AUDIENCE } from '../../common/names.js';
import { startControlPlane, type ControlPlane } from '../../localcluster/controlplane/index.js';
import { startWebhook, type StartedWebhook } from '../../webhook/start.js';
import { agentRbacObjects, applyObjects, loadManifest, localWebhookConfiguration } from '../../demo/local-install.js';
import { createLogger } from '../../common/log.js';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { apiStatus, isAlreadyExists } from '../../common/kube/errors.js';
import { mutatingWebhookConfigurations, namespaced } from '../../common/kube/resources.js';

const log = createLogger({ component: 'test' }).child({}, { level: process.env.SHOAL_TEST_VERBOSE ? 'info' : 'silent' });

const kubeClient = (path: string): KubeClient => new KubeClient(loadKubeConfig({ kubeconfig: path }));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe('webhook on a real 1.20 API server', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: KubeClient;
  const webhooks: StartedWebhook[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-wh-k8s-'));
    cp = await startControlPlane({ runDir: join(dir, 'cp'), logger: log });
    admin = kubeClient(cp.adminKubeconfigPath);
    await applyObjects(admin, [...loadManifest('namespace.yaml'), ...loadManifest('rbac.yaml')]);
    // Register by URL with a CA that signed nothing: the webhook must put its own in place.
    const port = await freePort();
    await applyObjects(admin, [localWebhookConfiguration({ url: `https://127.0.0.1:${port}`, caCert: 'not a CA' })]);
    // The webhook runs with exactly the rights manifests/rbac.yaml gives its ServiceAccount.
    const asWebhook = await cp.userKubeconfig('shoal-webhook', 'system:serviceaccount:shoal-system:shoal-webhook', ['system:serviceaccounts', 'system:serviceaccounts:shoal-system']);
    const config = { host: '127.0.0.1', service: 'shoal-webhook', namespace: 'shoal-system', webhookConfig: 'shoal-webhook', agentImage: 'shoal/agent:it', agentPort: 8080, sidecarMode: 'auto' as const, kubeconfig: asWebhook };
    webhooks.push(await startWebhook({ ...config, port, certDir: join(dir, 'certs-a') }, { logger: log, syncIntervalMs: 500 }));
    webhooks.push(await startWebhook({ ...config, port: 0, certDir: join(dir, 'certs-b') }, { logger: log, syncIntervalMs: 500 }));
  });
  afterAll(async () => {
    await Promise.all(webhooks.map((w) => w.close()));
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps one CA in its Secret and puts it into the caBundle, with only its own RBAC', async () => {
    const secret = await namespaced(admin, 'shoal-system').secrets.get('shoal-webhook-tls');
    const ca = Buffer.from(secret.data!['ca.crt']!, 'base64').toString();
    expect(webhooks.map((w) => w.caCert)).toEqual([ca, ca]);
    expect(webhooks.map((w) => w.sidecar.mode)).toEqual(['container', 'container']); // 1.20: no native sidecars
    const bundles = await until('the caBundle', async () => {
      const cfg = await mutatingWebhookConfigurations(admin).get('shoal-webhook');
      const b = cfg.webhooks!.map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
      return b.every((x) => x === ca) ? b : undefined;
    });
    expect(bundles).toHaveLength(2);
  });

  it('mutates a labelled StatefulSet and the pods its controller creates; agents get their RBAC', async () => {
    const ns = 'shoal-it';
    await applyObjects(admin, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, ...agentRbacObjects(ns)]);
    const asAgent = kubeClient(await cp.userKubeconfig('agent', `system:serviceaccount:${ns}:shoal-agent`, ['system:serviceaccounts']));
    await expect(namespaced(asAgent, ns).pods.list()).resolves.toBeDefined();
    await namespaced(asAgent, 'default').pods.list().then(
      () => expect.fail('the agent must not read other namespaces'),
      (err: unknown) => expect(apiStatus(err)).toBe(403),
    );

    const sts: V1StatefulSet = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'storage', labels: { 'shoal.dev/cluster': 'it' } },
      spec: {
        serviceName: 'storage',
        replicas: 1,
        selector: { matchLabels: { app: 'storage' } },
        template: {
          metadata: { labels: { app: 'storage' } },
          spec: { serviceAccountName: 'shoal-agent', containers: [{ name: 'tarantool', image: 'tarantool/tarantool:2.6' }] },
        },
      },
    };
    const kube = namespaced(admin, ns);
    // A fresh registration takes a moment to reach the API server's admission chain.
    const created = await until('the StatefulSet to be mutated', async () => {
      const s = await kube.statefulSets.create(sts).catch(async (err: unknown) => {
        if (isAlreadyExists(err)) return kube.statefulSets.get('storage');
        throw err;
      });
      if (s.spec?.updateStrategy?.type === 'OnDelete') return s;
      await kube.statefulSets.delete('storage');
      return undefined;
    });
    expect(created.spec!.template.metadata!.labels!['shoal.dev/cluster']).toBe('it');
    expect(JSON.parse(created.metadata!.annotations!['shoal.dev/update-strategy']!)).toMatchObject({ type: 'RollingUpdate' });

    const pod = await until('pod storage-0', () => kube.pods.get('storage-0'));
    const spec = pod.spec!;
    expect(spec.containers.map((c) => c.name)).toEqual(['tarantool', 'shoal-agent']);
    expect(spec.volumes!.map((v) => v.name)).toContain('shoal-run');
    const agent = spec.containers[1]!;
    expect(agent.env!.find((e) => e.name === 'SHOAL_REPLICASET')?.value).toBe('storage');
    expect(agent.readinessProbe!.httpGet!.path).toBe('/readyz');
    expect(spec.containers[0]!.lifecycle!.preStop!.httpGet!.path).toBe('/prestop');
    expect(pod.metadata!.annotations!['shoal.dev/injected']).toBeDefined();

    // Issue 14: the ServiceAccount plugin mounted the pod's token into every container before the
    // webhook ran (and runs again after it); only the agent holds one, its own projected volume.
    const saDir = '/var/run/secrets/kubernetes.io/serviceaccount';
    expect(spec.automountServiceAccountToken).toBe(false);
    const holders = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === saDir));
    expect(holders.map((c) => c.name)).toEqual(['shoal-agent']);
    expect(agent.volumeMounts!.find((m) => m.mountPath === saDir)).toEqual({ name: 'shoal-api-access', mountPath: saDir, readOnly: true });
    expect(spec.volumes!.map((v) => v.name).filter((n) => /-token-|^kube-api-access-/.test(n))).toEqual([]);
    // …whose CA source exists in every namespace (1.20's controller-manager publishes kube-root-ca.crt).
    const rootCa = await until('kube-root-ca.crt in the namespace', () => kube.configMaps.get('kube-root-ca.crt'));
    expect(rootCa.data?.['ca.crt']).toMatch(/BEGIN CERTIFICATE/);

    // Issue 14, hole 6: the agent alone gets the mesh-CA token, the CA and where to ask.
    const meshDir = '/var/run/secrets/shoal.dev/mesh-ca';
    expect(spec.volumes!.find((v) => v.name === 'shoal-mesh-ca')?.projected?.sources?.[0]?.serviceAccountToken?.audience).toBe(MESH_CA_AUDIENCE);
    expect([...(spec.initContainers ?? []), ...spec.containers].filter((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === meshDir)).map((c) => c.name)).toEqual(['shoal-agent']);
    expect(agent.env!.find((e) => e.name === 'SHOAL_MESH_CA_CERT')?.value).toBe(webhooks[0]!.caCert);
    expect(agent.env!.find((e) => e.name === 'SHOAL_MESH_CA_URL')?.value).toBe('https://shoal-webhook.shoal-system.svc:443');
  });

  it('issues a mesh certificate only for the labelled pod a token of its audience is bound to', async () => {
    const ns = 'shoal-it';
    const kube = namespaced(admin, ns);
    const pod = await until('pod storage-0', () => kube.pods.get('storage-0'));
    // An unlabelled pod the same ServiceAccount runs (no webhook touches it).
    const other = await kube.pods.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain' }, spec: { serviceAccountName: 'shoal-agent', containers: [{ name: 'c', image: 'busybox' }] } });
    // What the kubelet asks for a projected serviceAccountToken volume.
    const tokenFor = async (p: V1Pod, audiences: string[]): Promise<string> => {
      const tr = await kube.serviceAccounts.createSubresource<AuthenticationV1TokenRequest>('shoal-agent', 'token', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences, expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: p.metadata!.name!, uid: p.metadata!.uid! } },
      });
      return tr.status!.token;
    };
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ask = async (token: string | null, publicKey: string = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()) => {
      const res = await httpsPost(`${webhooks[1]!.url}/mesh/certificate`, webhooks[1]!.caCert!, token, { publicKey });
      return { status: res.status, body: JSON.parse(res.text) as { certificate?: string; ca?: string; message?: string } };
    };

    const meshToken = await tokenFor(pod, [MESH_CA_AUDIENCE]);
    const ok = await ask(meshToken);
    expect(ok.status).toBe(200);
    const cert = new X509Certificate(ok.body.certificate!);
    expect(meshIdentityFromSan(cert.subjectAltName)).toEqual({ namespace: ns, cluster: 'it', pod: 'storage-0' });
    expect(cert.checkPrivateKey(keys.privateKey)).toBe(true);
    expect(cert.verify(new X509Certificate(webhooks[0]!.caCert!).publicKey)).toBe(true);
    expect(ok.body.ca).toBe(webhooks[0]!.caCert);

    const refusals = [
      ['no token', await ask(null)],
      ['a token of the API audience', await ask(await tokenFor(pod, []))],
      ['a token bound to an unlabelled pod', await ask(await tokenFor(other, [MESH_CA_AUDIENCE]))],
      ['garbage', await ask('not-a-token')],
      ['an RSA key', await ask(meshToken, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString())],
    ] as const;
    expect(refusals.map(([what, r]) => [what, r.status])).toEqual([
      ['no token', 401],
      ['a token of the API audience', 401],
      ['a token bound to an unlabelled pod', 403],
      ['garbage', 401],
      ['an RSA key', 400],
    ]);
    // Once its pod is gone, its token gets nothing (TokenReview checks the bound pod's uid).
    await kube.pods.delete('plain', { gracePeriodSeconds: 0 });
    const goneToken = await tokenFor(pod, [MESH_CA_AUDIENCE]);
    await kube.pods.delete('storage-0', { gracePeriodSeconds: 0 });
    await until('storage-0 replaced', async () => {
      const p = await kube.pods.get('storage-0');
      return p.metadata?.uid !== pod.metadata?.uid ? p : undefined;
    });
    expect((await ask(goneToken)).status).toBeGreaterThanOrEqual(401);
  });
});

function httpsPost(url: string, ca: string, token: string | null, body: unknown): Promise<{ status: number; text: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', ca, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(data);
  });
}
