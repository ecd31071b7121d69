// Starts a real local Kubernetes 1.20 control plane in a temp dir and proves it behaves like one:
// namespaces, Lease conflicts, authentication/authorization, controllers at work, node rights,
// an API server outage, and a stop that leaves no process behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  locateKubernetesBinaries,
  startControlPlane,
  type ComponentName,
  type ControlPlane,
} from '../../localcluster/controlplane/index.js';
import { ShoalError } from '../../common/errors.js';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { KubeApiError } from '../../common/kube/errors.js';
import { namespaced, namespaces, nodes, persistentVolumes, serverVersion, microTime, type LeaseJson } from '../../common/kube/resources.js';
import { createLogger } from '../../common/log.js';

const log = createLogger({ component: 'test' });

const clients: KubeClient[] = [];
function client(kubeconfigPath: string): KubeClient {
  const c = new KubeClient(loadKubeConfig({ kubeconfig: kubeconfigPath }));
  clients.push(c);
  return c;
}

/** The rejection of `p` as a KubeApiError (fails the test if `p` resolves or throws something else). */
async function apiError(p: Promise<unknown>): Promise<{ code: number; reason: string | undefined }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof KubeApiError)) throw err;
    return { code: err.code, reason: err.reason };
  }
  throw new Error('expected the API call to fail');
}

/** A request with the cluster CA but no client certificate; `token` adds a bearer token. */
function anonymous(url: string, caPath: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: readFileSync(caPath), headers: token ? { Authorization: `Bearer ${token}` } : {}, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // keep polling
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe('locateKubernetesBinaries', () => {
  it('says how to get the binaries when they are missing', () => {
    expect(() => locateKubernetesBinaries('/nonexistent/shoal-bin')).toThrow(ShoalError);
    expect(() => locateKubernetesBinaries('/nonexistent/shoal-bin')).toThrow(/provision-kubernetes\.sh/);
  });
});

describe('startControlPlane failures', () => {
  it('names the log to read and leaves nothing running when a fixed port is taken', async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'shoal-controlplane-busy-'));
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const address = busy.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const err: unknown = await startControlPlane({ runDir, ports: { apiServer: port }, logger: log }).then(
        () => new Error('expected startControlPlane to fail'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ShoalError);
      expect(String(err)).toMatch(/address already in use/);
      expect(String(err)).toContain(join(runDir, 'logs', 'kube-apiserver.log'));
      // etcd was started before the API server failed; it must be gone.
      const leftovers = await readdir(join(runDir, 'pids'));
      expect(leftovers).toEqual([]);
    } finally {
      busy.close();
      await rm(runDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('local control plane (real Kubernetes v1.20.2)', () => {
  let runDir = '';
  let cp: ControlPlane | undefined;
  let pids: Partial<Record<ComponentName, number>> = {};

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'shoal-controlplane-'));
    const t = Date.now();
    cp = await startControlPlane({ runDir, logger: log });
    log.info({ ms: Date.now() - t }, 'control plane started');
    pids = cp.pids();
  }, 180_000);

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await cp?.stop();
    for (const pid of Object.values(pids)) if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    if (runDir) await rm(runDir, { recursive: true, force: true });
  }, 120_000);

  const plane = (): ControlPlane => {
    if (!cp) throw new Error('control plane not started');
    return cp;
  };

  it('runs all four processes and serves version v1.20.2', async () => {
    expect(Object.keys(pids).sort()).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']);
    const info = await serverVersion(client(plane().adminKubeconfigPath));
    expect(info.gitVersion).toBe('v1.20.2');
    expect(plane().apiServerUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates a namespace, and the controller-manager gives it a default ServiceAccount', async () => {
    const admin = client(plane().adminKubeconfigPath);
    const kube = namespaced(admin, 'cp-test');
    await namespaces(admin).create({ metadata: { name: 'cp-test' } });
    const sa = await until('default ServiceAccount in cp-test', 30_000, async () => kube.serviceAccounts.get('default'));
    expect(sa.metadata?.name).toBe('default');
    // The token controller (also the controller-manager) then makes the legacy token Secret.
    const secret = await until('default token secret', 30_000, async () => {
      const list = await kube.secrets.list();
      return list.items.find((s) => s.type === 'kubernetes.io/service-account-token');
    });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'namespace', 'token']);
  });

  it('rejects creating the same Lease twice with 409 AlreadyExists', async () => {
    const leases = namespaced(client(plane().adminKubeconfigPath), 'cp-test').leases;
    const lease: LeaseJson = {
      metadata: { name: 'shoal-test', namespace: 'cp-test' },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: microTime() },
    };
    const created = await leases.create(lease);
    expect(created.spec?.holderIdentity).toBe('a');
    const err = await apiError(leases.create(lease));
    expect(err).toEqual({ code: 409, reason: 'AlreadyExists' });
    // A stale resourceVersion on replace is a 409 Conflict.
    const stale = { ...created, spec: { ...created.spec, holderIdentity: 'b' } };
    await leases.replace('shoal-test', stale);
    const conflict = await apiError(leases.replace('shoal-test', stale));
    expect(conflict).toEqual({ code: 409, reason: 'Conflict' });
  });

  it('refuses unauthenticated and unauthorized requests', async () => {
    const url = `${plane().apiServerUrl}/api/v1/namespaces`;
    expect([401, 403]).toContain(await anonymous(url, plane().caCertPath));
    expect(await anonymous(url, plane().caCertPath, 'not-a-valid-token')).toBe(401);
    // An authenticated user without any binding is forbidden.
    const nobody = client(await plane().userKubeconfig('nobody', 'nobody'));
    expect((await apiError(namespaces(nobody).list())).code).toBe(403);
  });

  it('gives a kubelet identity its own node, lease and volumes, and nothing of other nodes', async () => {
    const node = client(await plane().kubeletKubeconfig('node-a'));
    await nodes(node).create({
      metadata: { name: 'node-a', labels: { 'kubernetes.io/hostname': 'node-a' } },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'test' }],
        allocatable: { pods: '10' },
        capacity: { pods: '10' },
      },
    });
    await namespaced(node, 'kube-node-lease').leases.create({
      metadata: { name: 'node-a', namespace: 'kube-node-lease' },
      spec: { holderIdentity: 'node-a', leaseDurationSeconds: 40, renewTime: microTime() },
    });
    // The Node authorizer does not cover creating PersistentVolumes; the shoal:node-extra binding does.
    await persistentVolumes(node).create({
      metadata: { name: 'pv-node-a-test' },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        local: { path: '/tmp/pv-node-a-test' },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-a'] }] }],
          },
        },
      },
    });
    await persistentVolumes(node).delete('pv-node-a-test');
    // Another node's object is out of reach (Node authorizer + NodeRestriction).
    const other = await apiError(nodes(node).create({ metadata: { name: 'node-b' } }));
    expect(other.code).toBe(403);
    const secrets = await apiError(namespaced(node, 'cp-test').secrets.list());
    expect(secrets.code).toBe(403);
  });

  it('survives an API server outage and brings the controllers back', async () => {
    const admin = client(plane().adminKubeconfigPath);
    const before = plane().pids();
    await plane().stopApiServer();
    expect(plane().pids()['kube-apiserver']).toBeUndefined();
    await expect(namespaces(admin).list()).rejects.toThrow();
    // Long enough for the controllers to lose their leases and exit (> ~10 s).
    await sleep(20_000);
    await plane().startApiServer();
    const after = plane().pids();
    expect(after['etcd']).toBe(before['etcd']);
    expect(after['kube-apiserver']).toBeDefined();
    expect(after['kube-controller-manager']).toBeDefined();
    expect(after['kube-scheduler']).toBeDefined();
    // Data survived (etcd kept running) and the controllers work again.
    await namespaces(admin).get('cp-test');
    await namespaces(admin).create({ metadata: { name: 'cp-test-after' } });
    await until('default ServiceAccount after the outage', 60_000, async () => namespaced(admin, 'cp-test-after').serviceAccounts.get('default'));
    pids = { ...pids, ...after };
  }, 180_000);

  it('stops every process it started', async () => {
    const all = { ...pids, ...plane().pids() };
    await plane().stop();
    for (const [name, pid] of Object.entries(all)) {
      expect(alive(pid), `${name} (pid ${pid}) still running`).toBe(false);
    }
    expect(plane().pids()).toEqual({});
    await plane().stop(); // idempotent
  }, 120_000);
});
