// Coordination end to end without the kubelet: a REAL v1.20.2 API server (its controller-manager
// creates the StatefulSet's pods; the test plays kubelet by patching each pod's IP and Ready
// condition), three REAL Tarantool processes, and three agents started in-process with
// coordination on, each on its own loopback IP like a pod. One becomes master, two follow it, data
// written on the master is on both, /status agrees from every pod; then the coordinator's pod dies
// (agent stopped without releasing the Lease, its Tarantool SIGKILLed) and another agent takes the
// Lease with a higher term and the replica set ends with one writable master again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import { createKubeClients, loadKubeConfig, type KubeClients } from '../../agent/kube/client.js';
import { startAgent, type Agent } from '../../agent/runtime.js';
import { locateKubernetesBinaries, startControlPlane, type ControlPlane } from '../../localcluster/controlplane.js';
import type { AgentStatus } from '../../shared/status.js';
import { eventually, freePort, TarantoolFleet, type TarantoolInstance } from '../helpers/tarantool.js';

const NS = 'control';
const CLUSTER = 'ctl';
const RS = 'storage';
const PODS = ['storage-0', 'storage-1', 'storage-2'];
const IPS = ['127.0.55.1', '127.0.55.2', '127.0.55.3'];

const haveBinaries = ((): boolean => {
  try {
    locateKubernetesBinaries();
    return true;
  } catch {
    return false;
  }
})();

interface Pod {
  name: string;
  ip: string;
  t: TarantoolInstance;
  agent?: Agent;
  lua(code: string): Promise<unknown>;
}

async function status(ip: string, port: number): Promise<AgentStatus> {
  const res = await fetch(`http://${ip}:${port}/status`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as AgentStatus;
}

describe.skipIf(!haveBinaries)('coordination of three real agents, Tarantools and API server', () => {
  let runDir = '';
  let cp: ControlPlane | undefined;
  let kube: KubeClients;
  const fleet = new TarantoolFleet();
  const pods: Pod[] = [];
  let agentPort = 0;
  let listenPort = 0;
  const timeline: Record<string, number> = {};

  function configFor(p: Pod): AgentConfig {
    return {
      pod: p.name,
      namespace: NS,
      podIp: p.ip,
      cluster: CLUSTER,
      replicaset: RS,
      port: agentPort,
      listenPort,
      bindHost: p.ip,
      runDir: p.t.runDir,
      consoleSocket: p.t.consoleSocket,
      tarantoolLog: p.t.logPath,
      replicationUser: 'shoal_replicator',
      timings: { leaseSeconds: 3, failoverTimeoutMs: 4_000, prestopTimeoutMs: 10_000, consoleTimeoutMs: 20_000, statusTimeoutMs: 2_000 },
    };
  }

  async function startPodAgent(p: Pod): Promise<void> {
    const log = pino({ level: process.env.SHOAL_TEST_LOG_LEVEL ?? 'info', base: { pod: p.name } }, pino.destination({ dest: join(runDir, `${p.name}.agent.log`), sync: false }));
    // releaseLease false: stopping the agent is a crash as far as the Lease goes.
    p.agent = await startAgent(configFor(p), log, { processMetrics: false, control: { env: { KUBECONFIG: cp?.adminKubeconfigPath }, releaseLease: false } });
  }

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'shoal-control-'));
    cp = await startControlPlane({ runDir: join(runDir, 'cp'), logger: pino({ level: 'silent' }) });
    kube = createKubeClients(loadKubeConfig({ KUBECONFIG: cp.adminKubeconfigPath }), NS);
    await kube.core.createNamespace({ body: { metadata: { name: NS } } });
    [agentPort, listenPort] = await Promise.all([freePort(), freePort()]);

    const labels = { 'shoal.dev/cluster': CLUSTER, app: RS };
    await kube.apps.createNamespacedStatefulSet({
      namespace: NS,
      body: {
        metadata: { name: RS, labels: { 'shoal.dev/cluster': CLUSTER } },
        spec: {
          replicas: 3,
          serviceName: RS,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: { app: RS } },
          template: { metadata: { labels }, spec: { containers: [{ name: 'tarantool', image: 'tarantool/tarantool:2.6' }] } },
        },
      },
    });
    // The test is the kubelet: once the controller created the pods, give each an IP and Ready.
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    await eventually(async () => ((await kube.core.listNamespacedPod({ namespace: NS })).items.length === 3 ? true : undefined), 60_000, 200);
    for (const [i, name] of PODS.entries()) {
      const ip = IPS[i] as string;
      await kube.core.patchNamespacedPodStatus(
        { name, namespace: NS, body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } } },
        merge,
      );
      const t = await fleet.start(name);
      const client = fleet.client(t, { timeoutMs: 20_000 });
      pods.push({ name, ip, t, lua: (code) => client.eval(code, [], { timeoutMs: 20_000 }) });
    }
    timeline['start'] = Date.now();
    await Promise.all(pods.map((p) => startPodAgent(p)));
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled(pods.map((p) => p.agent?.stop()));
    await fleet.cleanup();
    await cp?.stop();
    if (runDir && !process.env.SHOAL_TEST_KEEP) await rm(runDir, { recursive: true, force: true });
  }, 120_000);

  const live = (): Pod[] => pods.filter((p) => p.t.running && p.agent);

  async function agreedMaster(among: Pod[]): Promise<{ master: string; term: number; statuses: AgentStatus[] } | undefined> {
    const statuses = await Promise.all(among.map((p) => status(p.ip, agentPort)));
    const masters = new Set(statuses.map((s) => s.replicasets.find((r) => r.name === RS)?.master ?? null));
    const master = [...masters][0];
    if (masters.size !== 1 || !master || !among.some((p) => p.name === master)) return undefined;
    const m = statuses.find((s) => s.pod === master);
    if (m?.instance.ro !== false) return undefined;
    // Every other live instance is a configured read-only replica following it.
    if (statuses.some((s) => s.pod !== master && (s.instance.role !== 'replica' || s.instance.ro !== true))) return undefined;
    const ready = await Promise.all(among.map(async (p) => (await fetch(`http://${p.ip}:${agentPort}/readyz`)).status === 200));
    if (!ready.every(Boolean)) return undefined;
    return { master, term: Math.max(...statuses.map((s) => s.coordinator.term)), statuses };
  }

  it('forms one replica set: a master, two replicas following it, data replicated, /status identical', async () => {
    const formed = await eventually(() => agreedMaster(pods), 120_000, 200);
    timeline['formed'] = Date.now();
    const master = pods.find((p) => p.name === formed.master) as Pod;
    const view = formed.statuses.map((s) => ({ coordinator: s.coordinator.pod, replicasets: s.replicasets.map((r) => ({ name: r.name, master: r.master, pods: r.instances.map((i) => i.pod) })) }));
    for (const v of view) expect(v).toEqual(view[0]);
    expect(formed.statuses.every((s) => s.coordinator.pod !== null && s.coordinator.term >= 1)).toBe(true);
    expect(formed.statuses.filter((s) => s.coordinator.self)).toHaveLength(1);

    await master.lua("box.schema.space.create('kv', {if_not_exists = true}) box.space.kv:create_index('pk', {if_not_exists = true}) box.space.kv:replace{1, 'one'}");
    for (const p of pods.filter((x) => x !== master)) {
      await eventually(async () => ((await p.lua("return box.space.kv and box.space.kv:get(1) ~= nil")) === true ? true : undefined), 20_000);
    }
    // Every member replicates from every member and counts a majority of 3 for synchronous writes.
    for (const p of pods) {
      const q = await p.lua('return box.cfg.replication_synchro_quorum');
      expect(q).toBe(2);
      const n = await p.lua('return #box.cfg.replication');
      expect(n).toBe(3);
    }
    console.log(`formed in ${(timeline['formed'] ?? 0) - (timeline['start'] ?? 0)} ms; master ${formed.master}, term ${formed.term}`);
  }, 180_000);

  it('a new coordinator takes the Lease with a higher term after the coordinator pod dies; one master remains', async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const coordinator = pods.find((p) => p.agent?.control?.isLeader()) as Pod;
    expect(coordinator).toBeDefined();
    const wasMaster = coordinator.name === before.master;
    const killedAt = Date.now();
    await coordinator.agent?.stop();
    coordinator.agent = undefined;
    await coordinator.t.kill('SIGKILL');

    const rest = live();
    const next = await eventually(async () => (rest.find((p) => p.agent?.control?.isLeader()) ? true : undefined), 30_000, 100);
    expect(next).toBe(true);
    const tookLeaseMs = Date.now() - killedAt;
    const after = await eventually(async () => {
      const agreed = await agreedMaster(rest);
      return agreed && agreed.term > before.term ? agreed : undefined;
    }, 60_000, 200);
    const settledMs = Date.now() - killedAt;
    expect(after.term).toBeGreaterThan(before.term);
    // Exactly one writable instance among the living.
    const writable = await Promise.all(rest.map((p) => p.lua('return box.info.ro == false')));
    expect(writable.filter(Boolean)).toHaveLength(1);
    const master = rest.find((p) => p.name === after.master) as Pod;
    await master.lua("box.space.kv:replace{2, 'two'}");
    for (const p of rest.filter((x) => x !== master)) {
      await eventually(async () => ((await p.lua('return box.space.kv:get(2) ~= nil')) === true ? true : undefined), 20_000);
    }
    console.log(`coordinator ${coordinator.name} (master: ${wasMaster}) died: Lease taken in ${tookLeaseMs} ms, settled (term ${before.term} → ${after.term}, master ${after.master}) in ${settledMs} ms`);
  }, 180_000);
});
