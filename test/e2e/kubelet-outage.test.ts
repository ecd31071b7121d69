import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster } from '../../localcluster/cluster.js';
import { unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { pidsOfUids } from '../../localcluster/kubelet/process.js';
import { condition, kubeClients, waitFor, waitPodReady } from '../../tools/kube.js';

// An API server outage, on a cluster of its own (stopping the shared one would disturb other
// files): what a pod did meanwhile reaches the API afterwards, the node stays Ready, and the
// kubelet's watch comes back (a pod created after the outage runs). Also proves two local
// clusters coexist on one machine.

const IP_BASE = freeIpBase(30, 39);
let runDir = '';
let cluster: LocalCluster | undefined;

beforeAll(async () => {
  runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-e2e-outage-'));
  cluster = await startLocalCluster({ runDir, name: `outage${IP_BASE.split('.')[2]}`, ipBase: IP_BASE, logFile: path.join(runDir, 'cluster.log') });
});

afterAll(async () => {
  await cluster?.stop();
  const [minUid, maxUid] = unixUidRange(IP_BASE, 200_000);
  expect(pidsOfUids(minUid, maxUid)).toEqual([]);
  await rm(runDir, { recursive: true, force: true });
});

it('reports what happened during an API server outage once the API server is back', async () => {
  const c = cluster as LocalCluster;
  const k = kubeClients(c.kubeconfig);
  await waitFor('default ServiceAccount', () => k.in('default').serviceAccounts.get('default'), { timeoutMs: 30_000 });
  await k.in('default').pods.create({
    metadata: { name: 'short' },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'sleep 4; exit 7'] }],
    },
  });
  await waitPodReady(k.client, 'default', 'short', { timeoutMs: 30_000 });
  const outageStart = Date.now();
  await c.controlPlane.stopApiServer();
  // The container exits (code 7) while nobody can be told.
  await waitFor('the container to exit', () => c.podInfo('default', 'short')?.pids.c === null || undefined, { timeoutMs: 20_000 });
  await new Promise((r) => setTimeout(r, 2_000));
  await c.controlPlane.startApiServer();
  const outageMs = Date.now() - outageStart;

  const pod = await waitFor(
    'the exit to reach the API',
    async () => {
      const p = await k.in('default').pods.get('short');
      return p.status?.phase === 'Failed' ? p : undefined;
    },
    { timeoutMs: 30_000 },
  );
  expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 7, reason: 'Error' });
  expect(condition(pod, 'Ready')).toBe('False');

  // Heartbeats carry on (node status and Lease every 10 s) and the node never left Ready.
  const restartedAt = outageStart + outageMs;
  const ready = await waitFor(
    'a node heartbeat after the outage',
    async () => {
      const node = await k.nodes.get(c.nodeName);
      const r = node.status?.conditions?.find((x) => x.type === 'Ready');
      return new Date(r?.lastHeartbeatTime ?? 0).getTime() >= restartedAt - 1_000 ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  expect(ready.status).toBe('True');

  await k.in('default').pods.create({ metadata: { name: 'after' }, spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '100000'] }] } });
  await waitPodReady(k.client, 'default', 'after', { timeoutMs: 60_000 });
});
