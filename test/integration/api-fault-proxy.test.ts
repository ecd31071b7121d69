// The API fault proxy (localcluster/api-fault-proxy.ts) in front of a REAL local API server
// (v1.20.2, started here in a temp dir), used the way pods use it: the agent's Kubernetes layer (and a
// client-node watch) with a service account token and the cluster CA. Idle it forwards faithfully (answers, errors, watches);
// in a fault window it injects the seeded kinds reproducibly; an API server stop reaches its
// clients as a dropped connection; closing it closes every socket.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, Watch } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, type Bound } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { KubeApiError } from '../../common/kube/errors.js';
import { MERGE_PATCH, namespaced, type Resources } from '../../common/kube/resources.js';
import type { FaultDecision } from '../../localcluster/api-fault-plan.js';
import { startApiFaultProxy, type ApiFaultProxy } from '../../localcluster/api-fault-proxy.js';
import { startControlPlane, type ControlPlane } from '../../localcluster/controlplane/index.js';
import { prng } from '../../tools/chaos/schedule.js';
import { createNamespace, waitFor } from '../../tools/kube.js';

const silent = pino({ level: 'silent' });

/** A client as a pod makes one: the proxy's address, the cluster CA, a service account token. */
function podClient(server: string, caPath: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, caData: readFileSync(caPath).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'sa' }],
    currentContext: 'c',
  });
  return kc;
}

/** The same client as the agent's: the proxy's address, the cluster CA, a service account token. */
function podResources(server: string, caPath: string, token: string, namespace: string): Resources {
  return namespaced(new KubeClient({ server, ca: readFileSync(caPath), token: () => Promise.resolve(token) }), namespace);
}

/** What a client got: the value, or the code and Status reason of its KubeApiError. */
async function outcome<T>(what: string, f: (o: Bound & { what: string }) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: number; reason: string }> {
  try {
    return { ok: true, value: await f({ what, timeoutMs: 15_000 }) };
  } catch (err) {
    if (!(err instanceof KubeApiError)) throw err;
    return { ok: false, code: err.code, reason: err.reason };
  }
}

describe('API fault proxy in front of a real Kubernetes v1.20.2 API server', () => {
  let runDir = '';
  let cp: ControlPlane | undefined;
  let admin: CoreV1Api;
  let ns = '';
  let token = '';
  const proxies: ApiFaultProxy[] = [];

  const plane = (): ControlPlane => {
    if (!cp) throw new Error('control plane not started');
    return cp;
  };
  const start = async (onDecision?: (d: { method: string; decision: FaultDecision }) => void): Promise<ApiFaultProxy> => {
    const p = await startApiFaultProxy({
      upstream: plane().apiServerUrl,
      ca: readFileSync(plane().caCertPath),
      cert: readFileSync(plane().servingCertPath),
      key: readFileSync(plane().servingKeyPath),
      ...(onDecision ? { onDecision } : {}),
    });
    proxies.push(p);
    return p;
  };

  /** A pod's client through the proxy, with a watch on the namespace's ConfigMaps open. */
  const clientWatching = async (proxy: ApiFaultProxy): Promise<{ core: Resources; watch: AbortController; ended: () => boolean; error: () => unknown }> => {
    const kc = podClient(proxy.url, plane().caCertPath, token);
    let ended = false;
    let error: unknown;
    const watch = await new Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, {}, () => undefined, (err) => {
      ended = true;
      error = err;
    });
    return { core: podResources(proxy.url, plane().caCertPath, token, ns), watch, ended: () => ended, error: () => error };
  };

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'shoal-api-fault-proxy-'));
    cp = await startControlPlane({ runDir, logger: silent });
    const kc = new KubeConfig();
    kc.loadFromFile(cp.adminKubeconfigPath);
    admin = kc.makeApiClient(CoreV1Api);
    ns = await createNamespace(new KubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfigPath })), 'proxy');
    await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: `${ns}-admin` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
      },
    });
    const sa = await admin.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    const secret = await admin.readNamespacedSecret({ name: sa.secrets?.[0]?.name ?? '', namespace: ns });
    token = Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
  }, 180_000);

  afterAll(async () => {
    for (const p of proxies) await p.close();
    await cp?.stop();
    if (runDir) await rm(runDir, { recursive: true, force: true });
  }, 120_000);

  it('forwards faithfully while idle: answers, API errors and a watch', async () => {
    const proxy = await start();
    const core = podResources(proxy.url, plane().caCertPath, token, ns);
    const created = await core.configMaps.create({ metadata: { name: 'idle' }, data: { a: '1' } });
    const direct = await admin.readNamespacedConfigMap({ name: 'idle', namespace: ns });
    expect(direct.metadata?.uid).toBe(created.metadata?.uid);
    expect((await core.configMaps.get('idle')).data).toEqual({ a: '1' });
    // The API server's own errors come through as they are.
    expect(await outcome('read missing', (o) => core.configMaps.get('none', o))).toEqual({ ok: false, code: 404, reason: 'NotFound' });
    const stale = { ...created, data: { a: '2' } };
    await admin.replaceNamespacedConfigMap({ name: 'idle', namespace: ns, body: { ...created, data: { a: '3' } } });
    expect(await outcome('stale update', (o) => core.configMaps.replace('idle', stale, o))).toEqual({ ok: false, code: 409, reason: 'Conflict' });

    // A watch through the proxy sees an object created directly at the API server.
    const seen: string[] = [];
    let ended: unknown = 'not yet';
    const watch = await new Watch(podClient(proxy.url, plane().caCertPath, token)).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { resourceVersion: created.metadata?.resourceVersion },
      (type, obj: { metadata?: { name?: string } }) => void seen.push(`${type} ${obj.metadata?.name ?? ''}`),
      (err) => void (ended = err),
    );
    await admin.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'watched' } } });
    await waitFor('the watch event', () => seen.includes('ADDED watched'), { timeoutMs: 10_000 });
    expect(seen).toContain('MODIFIED idle');
    watch.abort();
    await waitFor('the watch to end', () => ended !== 'not yet', { timeoutMs: 5000 });
    expect(proxy.counts()).toMatchObject({ error: 0, conflict: 0, slow: 0 });
    expect(proxy.counts().forwarded).toBeGreaterThanOrEqual(5);
    await proxy.close();
  });

  it('injects the seeded kinds in a fault window, the same for the same seed, as Status objects client-node parses', async () => {
    let decisions: { method: string; decision: FaultDecision }[] = [];
    const proxy = await start((d) => decisions.push({ method: d.method, decision: d.decision }));
    const { core, ended, error } = await clientWatching(proxy);
    await admin.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'flaky' }, data: { n: '0' } } });
    // GET, PATCH and POST in turn; every forwarded one succeeds, so the outcome depends on the decision only.
    const sequence = async (): Promise<{ decision: FaultDecision; ms: number; result: { ok: boolean; code?: number; reason?: string } }[]> => {
      decisions = [];
      const results: { ms: number; result: { ok: boolean; code?: number; reason?: string } }[] = [];
      for (let i = 0; i < 30; i++) {
        const t0 = Date.now();
        const r =
          i % 3 === 0
            ? await outcome('read', (o) => core.configMaps.get('flaky', o))
            : i % 3 === 1
              ? await outcome('patch', (o) => core.configMaps.patch('flaky', { data: { n: String(i) } }, MERGE_PATCH, o))
              : await outcome('create', (o) => core.configMaps.create({ metadata: { generateName: 'flaky-' } }, o));
        results.push({ ms: Date.now() - t0, result: r.ok ? { ok: true } : { ok: false, code: r.code, reason: r.reason } });
      }
      expect(decisions.map((d) => d.method)).toEqual(Array.from({ length: 30 }, (_, i) => ['GET', 'PATCH', 'POST'][i % 3]));
      return results.map((r, i) => ({ ...r, decision: (decisions[i] as { decision: FaultDecision }).decision }));
    };
    const window = (seed: number): { random: () => number; rate: number; slowMs: readonly [number, number] } => ({ random: prng(seed), rate: 0.6, slowMs: [300, 600] });

    await sleep(300);
    expect(ended()).toBe(false);
    const beforeFirst = proxy.counts();
    proxy.openWindow(window(11));
    // A watch open when the window opens ends as at the API server's timeout: its client watches again, through the faults.
    await waitFor('the open watch to end', ended, { timeoutMs: 5000 });
    expect(error()).toBeNull();
    const first = await sequence();
    proxy.closeWindow();
    const afterFirst = proxy.counts();
    const diff = Object.fromEntries(Object.entries(afterFirst).map(([k, v]) => [k, v - beforeFirst[k as keyof typeof beforeFirst]]));
    proxy.openWindow(window(11));
    const second = await sequence();
    proxy.openWindow(window(12));
    const other = await sequence();
    proxy.closeWindow();

    expect(second.map((r) => r.decision)).toEqual(first.map((r) => r.decision));
    expect(other.map((r) => r.decision)).not.toEqual(first.map((r) => r.decision));
    const kinds = first.map((r) => r.decision.kind);
    for (const k of ['forward', 'error', 'conflict', 'slow'] as const) expect(kinds).toContain(k);
    for (const r of [...first, ...second, ...other]) {
      switch (r.decision.kind) {
        case 'forward':
          expect(r.result).toEqual({ ok: true });
          break;
        case 'error':
          expect(r.result).toEqual({ ok: false, code: 500, reason: 'InternalError' });
          break;
        case 'conflict':
          expect(r.result.code).toBe(409);
          expect(['Conflict', 'AlreadyExists']).toContain(r.result.reason);
          break;
        case 'slow':
          expect(r.result).toEqual({ ok: true });
          expect(r.ms).toBeGreaterThanOrEqual(r.decision.delayMs - 5);
          break;
      }
    }
    // A PATCH conflicts as an update does, a POST as a create does.
    const conflicts = first.map((r, i) => ({ r, method: ['GET', 'PATCH', 'POST'][i % 3] })).filter((x) => x.r.decision.kind === 'conflict');
    for (const c of conflicts) expect(c.r.result.reason).toBe(c.method === 'POST' ? 'AlreadyExists' : 'Conflict');
    const count = (k: FaultDecision['kind']): number => first.filter((r) => r.decision.kind === k).length;
    expect(diff).toEqual({ forwarded: count('forward'), error: count('error'), conflict: count('conflict'), slow: count('slow') });
    await proxy.close();
  });

  it('drops its clients\' connections while the API server is stopped, and forwards again once it is back', async () => {
    const proxy = await start();
    const { core, watch, ended } = await clientWatching(proxy);
    await plane().stopApiServer();
    try {
      await waitFor('the watch through the proxy to end', ended, { timeoutMs: 10_000 });
      const down = await outcome('read while down', (o) => core.configMaps.get('idle', o));
      expect(down).toEqual({ ok: false, code: 0, reason: 'Unreachable' });
    } finally {
      watch.abort();
      await plane().startApiServer();
    }
    expect((await core.configMaps.get('idle')).metadata?.name).toBe('idle');
    await proxy.close();
  });

  it('closes every socket and cancels slow requests when stopped', async () => {
    const proxy = await start();
    // Three draws per request: the first request is held for a minute, the ones after it are forwarded.
    const draws = [0, 0.99, 0.99];
    proxy.openWindow({ random: () => draws.shift() ?? 0.99, rate: 0.5, slowMs: [60_000, 60_000] });
    const core = podResources(proxy.url, plane().caCertPath, token, ns);
    const slow = outcome('slow read', (o) => core.configMaps.get('idle', o));
    await waitFor('the slow request to be waiting', () => proxy.counts().slow === 1, { timeoutMs: 5000 });
    const { ended } = await clientWatching(proxy); // resolves once the API server answered the watch
    expect(proxy.counts().forwarded).toBe(1);
    expect(ended()).toBe(false);
    expect(proxy.openConnections().clients).toBeGreaterThanOrEqual(2);
    expect(proxy.openConnections().upstream).toBeGreaterThanOrEqual(1);

    const t0 = Date.now();
    await proxy.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(proxy.openConnections()).toEqual({ clients: 0, upstream: 0 });
    expect(await slow).toMatchObject({ ok: false, code: 0 });
    await waitFor('the watch to end', ended, { timeoutMs: 5000 });
    // Nothing listens any more.
    const refused = await new Promise<string>((resolve) => {
      const s = connect(proxy.port, proxy.host);
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    await proxy.close(); // idempotent
  });
});
