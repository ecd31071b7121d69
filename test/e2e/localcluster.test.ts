import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { V1Container, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { hostImages } from '../../localcluster/cluster.js';
import { APISERVER_KUBELET_CLIENT } from '../../localcluster/controlplane/index.js';
import { startKubelet } from '../../localcluster/kubelet/index.js';
import { unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { execInContainer, pidsOfUids } from '../../localcluster/kubelet/process.js';
import { createNetFault } from '../../localcluster/netfault.js';
import { createLogger } from '../../common/log.js';
import {
  clusterCa,
  condition,
  createNamespace,
  deleteNamespace,
  kubeClients,
  kubectl,
  podRuntime,
  waitFor,
  waitPodGone,
  waitPodReady,
} from '../../tools/kube.js';

// The local cluster, proven through the real API server (issue 4 "done when", without the webhook
// parts): scheduling, the process kubelet's status, probes and restarts, StatefulSet OnDelete and
// volumes that outlive pods, graceful deletion (SIGKILL after the grace period, preStop before
// SIGTERM), network cuts, and a kubelet stop that leaves no process behind.

const kubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const nodeName = inject('nodeName');
const runDir = inject('runDir');
const k = kubeClients(kubeconfig);
const netfault = createNetFault(inject('netfaultPrefix'));
let ns = '';

// A tiny HTTP workload (mounted from a ConfigMap): binds the pod IP, reports what its process
// sees, answers /ready only after READY_AFTER_MS, records lifecycle events to $EVENTS.
const SERVER_JS = String.raw`
const fs = require('fs'), http = require('http'), https = require('https'), os = require('os'), net = require('net');
const host = process.env.SHOAL_BIND_HOST, port = Number(process.env.PORT || 8080), started = Date.now();
const record = (m) => { if (process.env.EVENTS) fs.appendFileSync(process.env.EVENTS, m + '\n'); console.log(m); };
const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
let apiCheck = 'pending';
try {
  const token = fs.readFileSync(sa + '/token', 'utf8'), ca = fs.readFileSync(sa + '/ca.crt'), nsName = fs.readFileSync(sa + '/namespace', 'utf8');
  https.get({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path: '/api/v1/namespaces/' + nsName + '/secrets', ca, headers: { Authorization: 'Bearer ' + token } },
    (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => (apiCheck = res.statusCode + ' ' + b.slice(0, 400))); })
    .on('error', (e) => (apiCheck = 'error ' + e.message));
} catch (e) { apiCheck = 'no token: ' + e.message; }
if (process.env.HANDLE_TERM) process.on('SIGTERM', () => { record('TERM'); setTimeout(() => process.exit(0), 100); });
http.createServer((req, res) => {
  if (req.url === '/ready') { res.statusCode = Date.now() - started >= Number(process.env.READY_AFTER_MS || 0) ? 200 : 503; return res.end(); }
  if (req.url === '/healthz') { res.statusCode = process.env.UNHEALTHY ? 500 : 200; return res.end(); }
  if (req.url === '/prestop') { record('PRESTOP-START'); setTimeout(() => { record('PRESTOP-END'); res.end('ok'); }, 1000); return; }
  if (req.url === '/info') {
    return res.end(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), hostname: os.hostname(), cwd: process.cwd(), env: process.env, apiCheck, saFiles: fs.readdirSync(sa).sort() }));
  }
  res.end('ok');
}).listen(port, host, () => record('listening ' + host + ':' + port));
`;

function nodeContainer(name: string, env: Record<string, string> = {}, extra: Partial<V1Container> = {}): V1Container {
  return {
    name,
    image: 'node:20',
    args: ['/app/server.js'],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'LISTEN', value: '$(POD_IP):8080' },
      ...Object.entries(env).map(([k, v]) => ({ name: k, value: v })),
    ],
    ports: [{ name: 'http', containerPort: 8080 }],
    volumeMounts: [{ name: 'app', mountPath: '/app', readOnly: true }],
    ...extra,
  };
}

function nodePod(name: string, containers: V1Container[], spec: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers,
      volumes: [{ name: 'app', configMap: { name: 'workload' } }],
      ...spec,
    },
  };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function runtime(name: string) {
  const info = podRuntime(stateFile, ns, name);
  if (!info) throw new Error(`the kubelet does not know pod ${ns}/${name}`);
  return info;
}

beforeAll(async () => {
  ns = await createNamespace(k.client, 'lc');
  await k.in(ns).configMaps.create({ metadata: { name: 'workload' }, data: { 'server.js': SERVER_JS } });
});

afterAll(async () => {
  if (ns) await deleteNamespace(k.client, ns);
});

describe('pods on the process kubelet', () => {
  it('schedules, starts and readies a pod through its probe, and posts an honest status', async () => {
    const t0 = Date.now();
    await k.in(ns).pods.create(nodePod('web', [
      nodeContainer('web', { READY_AFTER_MS: '1500' }, { readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }),
    ]));
    // Running but not yet Ready: readiness comes from the probe, not from the process start.
    const notReady = await waitFor(
      'web running, not ready',
      async () => {
        const p = await k.in(ns).pods.get('web');
        return p.status?.phase === 'Running' && condition(p, 'Ready') === 'False' ? p : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(notReady.status?.containerStatuses?.[0]).toMatchObject({ ready: false, started: true });
    const pod = await waitPodReady(k.client, ns, 'web', { timeoutMs: 30_000, intervalMs: 100 });
    const readyMs = Date.now() - t0;
    process.stderr.write(`[e2e] pod create → Ready: ${readyMs} ms (readiness held back 1.5 s by the workload)\n`);

    // Placed by kube-scheduler (the pod had no nodeName).
    expect(pod.spec?.nodeName).toBe(nodeName);
    const events = await k.in(ns).events.list({ fieldSelector: 'involvedObject.name=web' });
    // (1.20's scheduler writes events.k8s.io events: the core view has reportingComponent, not source.)
    const scheduledBy = events.items.filter((e) => e.reason === 'Scheduled').map((e) => e.reportingComponent || e.source?.component);
    expect(scheduledBy).toEqual(['default-scheduler']);

    const info = runtime('web');
    const s = pod.status;
    expect(s?.phase).toBe('Running');
    expect(s?.podIP).toBe(info.ip);
    expect(s?.podIPs).toEqual([{ ip: info.ip }]);
    expect(s?.hostIP).toBe('127.0.0.1');
    expect(s?.startTime).toBeDefined();
    expect(Object.fromEntries((s?.conditions ?? []).map((c) => [c.type, c.status]))).toEqual({
      Initialized: 'True',
      Ready: 'True',
      ContainersReady: 'True',
      PodScheduled: 'True',
    });
    const cs = s?.containerStatuses?.[0];
    expect(cs).toMatchObject({ name: 'web', image: 'node:20', ready: true, started: true, restartCount: 0, containerID: `process://${info.pids.web}` });
    expect(cs?.state?.running?.startedAt).toBeDefined();

    // What the process sees: its own uid, hostname, env, the ServiceAccount token at the usual path,
    // and a working in-cluster API connection (authenticated as the pod's ServiceAccount).
    const seen = await getJson<{ uid: number; hostname: string; env: Record<string, string>; apiCheck: string; saFiles: string[] }>(`http://${info.ip}:8080/info`);
    expect(seen.uid).toBe(info.unixUid);
    expect(seen.hostname).toBe('web');
    expect(seen.env).toMatchObject({ POD_NAME: 'web', POD_IP: info.ip, LISTEN: `${info.ip}:8080`, SHOAL_BIND_HOST: info.ip, KUBERNETES_SERVICE_HOST: '127.0.0.1' });
    expect(seen.saFiles).toEqual(['ca.crt', 'namespace', 'token']);
    expect(seen.apiCheck).toContain(`system:serviceaccount:${ns}:default`); // 403 from RBAC, so authenticated
    expect(await readFile(info.logPath('web') ?? '', 'utf8')).toContain(`listening ${info.ip}:8080`);

    const shown = await kubectl(kubeconfig, ['-n', ns, 'get', 'pod', 'web', '-o', 'wide']);
    expect(shown.stdout).toMatch(/web\s+1\/1\s+Running\s+0/);
    // kubectl logs: API server → the kubelet's endpoint → the container's log file.
    const logs = await kubectl(kubeconfig, ['-n', ns, 'logs', 'web', '--tail=1']);
    expect(logs.stdout).toBe(`listening ${info.ip}:8080\n`);
  });

  it('runs init containers in order, to completion, before the app containers', async () => {
    const step = (name: string, what: string): V1Container => ({
      name,
      image: 'busybox',
      command: ['sh', '-c', `echo ${what} >> /work/steps`],
      volumeMounts: [{ name: 'work', mountPath: '/work' }],
    });
    await k.in(ns).pods.create({
      metadata: { name: 'inits' },
      spec: {
        initContainers: [step('first', 'init-1'), step('second', 'init-2')],
        containers: [{ ...step('app', 'app'), command: ['sh', '-c', 'echo app >> /work/steps; exec sleep 100000'] }],
        volumes: [{ name: 'work', emptyDir: {} }],
      },
    });
    const pod = await waitPodReady(k.client, ns, 'inits', { timeoutMs: 30_000 });
    expect(pod.status?.initContainerStatuses?.map((c) => [c.name, c.state?.terminated?.reason, c.state?.terminated?.exitCode])).toEqual([
      ['first', 'Completed', 0],
      ['second', 'Completed', 0],
    ]);
    // Ready (no probe) means the app's process started, not that its echo ran yet.
    const steps = path.join(runtime('inits').hostPathOf('work') ?? '', 'steps');
    await waitFor('the app container to write its step', async () => ((await readFile(steps, 'utf8')).split('\n').length > 3 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
    expect(await readFile(steps, 'utf8')).toBe('init-1\ninit-2\napp\n');
    await k.in(ns).pods.delete('inits', { gracePeriodSeconds: 1 });
  });

  it('restarts a crashing container with back-off and one failing its liveness probe', async () => {
    await k.in(ns).pods.create({
      metadata: { name: 'crash' },
      spec: { containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'echo run; exit 3'] }] },
    });
    await k.in(ns).pods.create(nodePod('sick', [
      nodeContainer('sick', { UNHEALTHY: '1' }, { livenessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, failureThreshold: 2 } }),
    ]));
    let sawBackOff = false;
    const crashed = await waitFor(
      'crash restarted twice',
      async () => {
        const p = await k.in(ns).pods.get('crash');
        const c = p.status?.containerStatuses?.[0];
        if (c?.state?.waiting?.reason === 'CrashLoopBackOff') sawBackOff = true;
        return (c?.restartCount ?? 0) >= 2 ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(crashed.lastState?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(sawBackOff).toBe(true);
    const sick = await waitFor(
      'sick restarted by liveness',
      async () => {
        const c = (await k.in(ns).pods.get('sick')).status?.containerStatuses?.[0];
        return (c?.restartCount ?? 0) >= 1 ? c : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(sick.lastState?.terminated?.exitCode).toBe(143); // SIGTERM'd by the kubelet, as a runtime reports it
    // What kubectl describe shows: the kubelet's events.
    const reasons = async (pod: string) =>
      new Set((await k.in(ns).events.list({ fieldSelector: `involvedObject.name=${pod}` })).items.map((e) => e.reason));
    await waitFor('kubelet events', async () => {
      const crash = await reasons('crash');
      const sickEvents = await reasons('sick');
      return crash.has('Started') && crash.has('BackOff') && sickEvents.has('Unhealthy') && sickEvents.has('Killing');
    }, { timeoutMs: 10_000 });
    await k.in(ns).pods.delete('crash', { gracePeriodSeconds: 0 });
    await k.in(ns).pods.delete('sick', { gracePeriodSeconds: 0 });
  });
});

describe('StatefulSets', () => {
  it('leaves OnDelete pods alone after a template change until one is deleted, and a recreated pod finds its volume', async () => {
    const sts = (version: string): V1StatefulSet => ({
      metadata: { name: 'st' },
      spec: {
        serviceName: 'st',
        replicas: 2,
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'OnDelete' },
        selector: { matchLabels: { app: 'st' } },
        template: {
          metadata: { labels: { app: 'st' } },
          spec: {
            terminationGracePeriodSeconds: 2,
            containers: [
              {
                name: 'main',
                image: 'busybox',
                command: ['sh', '-c', 'echo "$(hostname) $VERSION" >> /data/boots; exec sleep 100000'],
                env: [{ name: 'VERSION', value: version }],
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
                readinessProbe: { exec: { command: ['test', '-s', '/data/boots'] }, periodSeconds: 1 },
              },
            ],
          },
        },
        volumeClaimTemplates: [
          { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
        ],
      },
    });
    const readyPods = (n: number) =>
      waitFor(
        `${n} ready st pods`,
        async () => {
          const pods = (await k.in(ns).pods.list({ labelSelector: 'app=st' })).items;
          const ready = pods.filter((p) => condition(p, 'Ready') === 'True' && !p.metadata?.deletionTimestamp);
          return ready.length === n ? new Map(ready.map((p) => [p.metadata?.name ?? '', p])) : undefined;
        },
        { timeoutMs: 60_000 },
      );

    await k.in(ns).statefulSets.create(sts('v1'));
    const before = await readyPods(2);
    const uidOf = (m: Map<string, V1Pod>, n: string) => m.get(n)?.metadata?.uid;
    const claims = await k.in(ns).persistentVolumeClaims.list();
    expect(claims.items.map((c) => [c.metadata?.name, c.status?.phase, c.spec?.storageClassName]).sort()).toEqual([
      ['data-st-0', 'Bound', 'local'],
      ['data-st-1', 'Bound', 'local'],
    ]);

    await k.in(ns).statefulSets.replace('st', { ...sts('v2'), metadata: { name: 'st', resourceVersion: (await k.in(ns).statefulSets.get('st')).metadata?.resourceVersion } });
    const revisions = await waitFor(
      'a new update revision',
      async () => {
        const s = (await k.in(ns).statefulSets.get('st')).status;
        return s?.updateRevision && s.updateRevision !== s.currentRevision ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );
    await new Promise((r) => setTimeout(r, 3_000)); // give a wrong controller time to act
    const untouched = await readyPods(2);
    expect(uidOf(untouched, 'st-0')).toBe(uidOf(before, 'st-0'));
    expect(uidOf(untouched, 'st-1')).toBe(uidOf(before, 'st-1'));

    const oldData = runtime('st-0').hostPathOf('data');
    await k.in(ns).pods.delete('st-0');
    const after = await waitFor(
      'st-0 recreated and ready',
      async () => {
        const m = await readyPods(2);
        return uidOf(m, 'st-0') !== uidOf(before, 'st-0') ? m : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(after.get('st-0')?.metadata?.labels?.['controller-revision-hash']).toBe(revisions.updateRevision);
    expect(after.get('st-1')?.metadata?.labels?.['controller-revision-hash']).toBe(revisions.currentRevision);
    expect(uidOf(after, 'st-1')).toBe(uidOf(before, 'st-1'));

    const info = runtime('st-0');
    expect(info.hostPathOf('data')).toBe(oldData);
    expect(await readFile(path.join(info.hostPathOf('data') ?? '', 'boots'), 'utf8')).toBe('st-0 v1\nst-0 v2\n');
    await k.in(ns).statefulSets.delete('st');
  });
});

describe('graceful deletion', () => {
  it('SIGKILLs a process that ignores SIGTERM once the grace period is over', async () => {
    await k.in(ns).pods.create({
      metadata: { name: 'stubborn' },
      spec: {
        terminationGracePeriodSeconds: 3,
        containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'trap "" TERM; echo up; while :; do sleep 0.2; done'] }],
      },
    });
    const pod = await waitFor(
      'stubborn running',
      async () => {
        const p = await k.in(ns).pods.get('stubborn');
        return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
      },
      { timeoutMs: 30_000 },
    );
    // Running is not yet trapping: a delete before the shell ran `trap` would end it at SIGTERM.
    await waitFor('stubborn trapping SIGTERM', async () => (await kubectl(kubeconfig, ['-n', ns, 'logs', 'stubborn'])).stdout.includes('up'), { timeoutMs: 30_000 });
    const { pids, unixUid } = runtime('stubborn');
    const t0 = Date.now();
    await k.in(ns).pods.delete('stubborn');
    await waitPodGone(k.client, ns, 'stubborn', pod.metadata?.uid ?? '', { timeoutMs: 30_000, intervalMs: 100 });
    const tookMs = Date.now() - t0;
    process.stderr.write(`[e2e] SIGTERM-ignoring pod with a 3 s grace period gone after ${tookMs} ms\n`);
    expect(tookMs).toBeGreaterThanOrEqual(2_900);
    expect(tookMs).toBeLessThan(8_000);
    expect(pidsOfUids(unixUid ?? -1, unixUid ?? -1)).toEqual([]);
    expect(() => process.kill(pids.c ?? -1, 0)).toThrow();
  });

  it('runs preStop hooks (exec and httpGet) before SIGTERM', async () => {
    const shared = path.join(runDir, 'e2e-prestop', ns);
    await mkdir(shared, { recursive: true });
    await chmod(shared, 0o777); // the pod's uid writes here
    await k.in(ns).pods.create(
      nodePod(
        'hooks',
        [
          {
            name: 'shell',
            image: 'busybox',
            command: ['sh', '-c', 'trap "echo TERM >> /shared/shell; exit 0" TERM; while :; do sleep 0.1; done'],
            lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo PRESTOP-START >> /shared/shell; sleep 1; echo PRESTOP-END >> /shared/shell'] } } },
            volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
          },
          nodeContainer('web', { HANDLE_TERM: '1', EVENTS: '/shared/web' }, {
            lifecycle: { preStop: { httpGet: { path: '/prestop', port: 'http' } } },
            volumeMounts: [
              { name: 'app', mountPath: '/app', readOnly: true },
              { name: 'shared', mountPath: '/shared' },
            ],
          }),
        ],
        {
          terminationGracePeriodSeconds: 10,
          volumes: [
            { name: 'app', configMap: { name: 'workload' } },
            { name: 'shared', hostPath: { path: shared, type: 'Directory' } },
          ],
        },
      ),
    );
    const pod = await waitFor(
      'hooks pod running with both containers',
      async () => {
        const p = await k.in(ns).pods.get('hooks');
        return p.status?.containerStatuses?.every((c) => c.state?.running) && (await readFile(path.join(shared, 'web'), 'utf8').catch(() => '')).includes('listening') ? p : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const t0 = Date.now();
    await k.in(ns).pods.delete('hooks');
    await waitPodGone(k.client, ns, 'hooks', pod.metadata?.uid ?? '', { timeoutMs: 30_000, intervalMs: 100 });
    const tookMs = Date.now() - t0;
    expect(tookMs).toBeGreaterThanOrEqual(1_000); // the hooks took a second
    expect(tookMs).toBeLessThan(9_000); // and nothing waited for the full grace period
    expect((await readFile(path.join(shared, 'shell'), 'utf8')).trim().split('\n')).toEqual(['PRESTOP-START', 'PRESTOP-END', 'TERM']);
    expect((await readFile(path.join(shared, 'web'), 'utf8')).trim().split('\n').slice(1)).toEqual(['PRESTOP-START', 'PRESTOP-END', 'TERM']);
  });
});

describe('network faults', () => {
  it('cuts a pod off from the other pods (both ways) until healed', async () => {
    for (const name of ['net-a', 'net-b']) {
      await k.in(ns).pods.create(nodePod(name, [nodeContainer('web', {}, { readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } })]));
    }
    await waitPodReady(k.client, ns, 'net-a', { timeoutMs: 30_000 });
    await waitPodReady(k.client, ns, 'net-b', { timeoutMs: 30_000 });
    const a = runtime('net-a');
    const b = runtime('net-b');
    const target = { ip: a.ip ?? '', unixUid: a.unixUid ?? -1 };
    // A connection attempt made by a process of `from` (its uid, its mount namespace), as its app would.
    const dial = async (from: typeof a, to: typeof a): Promise<string> => {
      const script = `const s = require('net').connect(8080, '${to.ip}'); s.setTimeout(1500);
        s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('timeout', () => { console.log('timeout'); s.destroy(); });
        s.on('error', (e) => console.log('error ' + e.code));`;
      const r = await execInContainer({ pid: from.pids.web ?? -1, uid: from.unixUid ?? -1, gid: from.unixUid ?? -1, env: { PATH: '/usr/bin:/bin' }, workingDir: '/' }, [process.execPath, '-e', script], 10_000);
      return r.output.trim();
    };
    expect(await dial(a, b)).toBe('connected');
    expect(await dial(b, a)).toBe('connected');
    try {
      await netfault.cutOff(target);
      await netfault.cutOff(target); // idempotent
      expect(await netfault.isCutOff(target)).toBe(true);
      expect(await dial(a, b)).toBe('timeout');
      expect(await dial(b, a)).toBe('timeout');
      // The cut is the pod's alone: b still reaches itself.
      expect(await dial(b, b)).toBe('connected');
      await waitFor('net-a not ready while cut off (its probe cannot reach it)', async () => condition(await k.in(ns).pods.get('net-a'), 'Ready') === 'False', { timeoutMs: 20_000 });
    } finally {
      await netfault.heal(target);
    }
    expect(await netfault.isCutOff(target)).toBe(false);
    expect(await dial(a, b)).toBe('connected');
    expect(await dial(b, a)).toBe('connected');
    await waitPodReady(k.client, ns, 'net-a', { timeoutMs: 20_000 });
  });
});

describe('kubelet stop', () => {
  it('leaves no process behind, not even one that left its process group', async () => {
    const extraNode = `e2e-extra-${ns.slice(-6)}`;
    const api = new URL(inject('apiServerUrl'));
    const ipBase = freeIpBase(40, 49);
    const kubelet = await startKubelet({
      kubeconfigPath: kubeconfig,
      nodeName: extraNode,
      runDir: path.join(runDir, 'extra-kubelet'),
      ipBase,
      images: hostImages(),
      apiServer: { host: api.hostname, port: Number(api.port) },
      serverAuth: { clientCa: clusterCa(kubeconfig), users: [APISERVER_KUBELET_CLIENT] },
      logger: createLogger({ component: 'kubelet' }, undefined, inject('logFile')),
      // Only the pod below (bound directly) runs here; the scheduler places nothing else on it.
      registerWithTaints: [{ key: 'shoal.dev/e2e-extra', value: 'true', effect: 'NoSchedule' }],
    });
    const [minUid, maxUid] = unixUidRange(ipBase, 200_000);
    try {
      await waitFor('extra node registered', () => k.nodes.get(extraNode), { timeoutMs: 20_000 });
      await k.in(ns).pods.create({
        metadata: { name: 'escapee' },
        spec: {
          nodeName: extraNode,
          containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'sleep 1000 & setsid sleep 1000 & exec sleep 1000'] }],
        },
      });
      await waitFor('three processes of the escapee pod', () => pidsOfUids(minUid, maxUid).length >= 3 || undefined, { timeoutMs: 30_000 });
    } finally {
      await kubelet.stop();
    }
    expect(pidsOfUids(minUid, maxUid)).toEqual([]);
    // The pod stays in the API (a stopped kubelet does not delete pods); clean up without it.
    await k.in(ns).pods.delete('escapee', { gracePeriodSeconds: 0 }).catch(() => undefined);
    await k.nodes.delete(extraNode);
  });
});
