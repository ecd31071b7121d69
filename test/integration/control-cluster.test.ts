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
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import { startAgent, type Agent } from '../../agent/runtime.js';
import type { CertificateSource } from '../../agent/mesh/certificates.js';
import { credentialsFor } from '../support/mesh.js';
import { startControlPlane, type ControlPlane } from '../../localcluster/controlplane/index.js';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { MERGE_PATCH, namespaced, namespaces, type Resources } from '../../common/kube/resources.js';
import type { AgentStatus } from '../../common/status.js';
import { eventually, freePort, TarantoolFleet, type TarantoolInstance } from '../support/tarantool.js';
import { switchoverToken } from '../../tools/switchover-credential.js';

const NS = 'control';
const CLUSTER = 'ctl';
const RS = 'storage';
const PODS = ['storage-0', 'storage-1', 'storage-2'];
const IPS = ['127.0.55.1', '127.0.55.2', '127.0.55.3'];


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

describe('coordination of three real agents, Tarantools and API server', () => {
  let runDir = '';
  let cp: ControlPlane | undefined;
  let kube: Resources;
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
      meshPort: agentPort + 1,
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
    p.agent = await startAgent(configFor(p), log, { processMetrics: false, control: { env: { KUBECONFIG: cp?.adminKubeconfigPath }, releaseLease: false, certificates: testCertificates(p.name) } });
  }

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'shoal-control-'));
    cp = await startControlPlane({ runDir: join(runDir, 'cp'), logger: pino({ level: 'silent' }) });
    kube = namespaced(new KubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfigPath })), NS);
    await namespaces(kube.client).create({ metadata: { name: NS } });
    [agentPort, listenPort] = await Promise.all([freePort(), freePort()]);

    const labels = { 'shoal.dev/cluster': CLUSTER, app: RS };
    await kube.statefulSets.create({
      metadata: { name: RS, labels: { 'shoal.dev/cluster': CLUSTER } },
      spec: {
        replicas: 3,
        serviceName: RS,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: RS } },
        template: { metadata: { labels }, spec: { containers: [{ name: 'tarantool', image: 'tarantool/tarantool:2.6' }] } },
      },
    });
    // The test is the kubelet: once the controller created the pods, give each an IP and Ready.
    await eventually(async () => ((await kube.pods.list()).items.length === 3 ? true : undefined), 60_000, 200);
    for (const [i, name] of PODS.entries()) {
      const ip = IPS[i] as string;
      await playKubelet(name, ip);
      // The application's hook, as a vshard router would register it.
      const t = await fleet.start(name, { afterCfg: "require('shoal').on_topology(function(t) rawset(_G, 'last_topology', t) end)" });
      const client = fleet.client(t, { timeoutMs: 20_000 });
      pods.push({ name, ip, t, lua: (code) => client.eval(code, [], { timeoutMs: 20_000 }) });
    }
    timeline['start'] = Date.now();
    await Promise.all(pods.map((p) => startPodAgent(p)));
  }, 240_000);

  afterAll(async () => {
    // Each step timed: a slow one is named on stderr (a CI run once spent the hook's whole bound here).
    const timed = async (what: string, step: () => Promise<unknown>): Promise<void> => {
      const t0 = Date.now();
      const slow = setInterval(() => process.stderr.write(`[control-cluster] still stopping ${what} after ${((Date.now() - t0) / 1000).toFixed(0)} s\n`), 15_000);
      try {
        await step();
      } finally {
        clearInterval(slow);
      }
    };
    await timed('the agents', () => Promise.allSettled(pods.map((p) => p.agent?.stop())));
    await timed('the Tarantools', () => fleet.cleanup());
    await timed('the control plane', async () => cp?.stop());
    if (runDir && !process.env.SHOAL_TEST_KEEP) await rm(runDir, { recursive: true, force: true });
    // Each step is bounded on its own (hand-over 10 s, kills 10 s, control plane grace + 10 s); twice
    // 120 s was spent here under a load of three clusters on two cores, so the sum gets room.
  }, 240_000);

  /** What a kubelet would report of a running pod: its IP, Running, Ready. */
  async function playKubelet(name: string, ip: string): Promise<void> {
    await kube.pods.patch(name, { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } }, MERGE_PATCH, { subresource: 'status' });
  }

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

  async function post(p: Pod, path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`http://${p.ip}:${agentPort}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function meshToken(): Promise<string> {
    const secret = await kube.secrets.get(`shoal-${CLUSTER}-mesh`);
    return Buffer.from(secret.data?.['token'] ?? '', 'base64').toString('utf8');
  }

  it('hands the topology to the on_topology hooks of every instance', async () => {
    for (const p of pods) {
      const seen = await eventually(async () => {
        const r = (await p.lua("local t = rawget(_G, 'last_topology') if t == nil then return nil end return {#t.replicasets, t.replicasets[1].master, #t.replicasets[1].instances}")) as unknown[] | null;
        return Array.isArray(r) && r[2] === 3 ? r : undefined;
      }, 20_000);
      expect(seen[0]).toBe(1);
      expect(PODS).toContain(seen[1]);
    }
  });

  it('POST /switchover: only a Kubernetes user allowed to update the StatefulSet; hands over (from any pod), one writer throughout', async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const replica = pods.find((p) => p.name !== before.master && !p.agent?.control?.isLeader()) ?? (pods.find((p) => p.name !== before.master) as Pod);
    const [token, onlooker] = await Promise.all([switchoverToken(kube, 'operator', { statefulsets: [RS] }), switchoverToken(kube, 'onlooker', { grant: false })]);
    expect((await post(replica, '/switchover', { replicaset: RS })).status).toBe(401);
    expect((await post(replica, '/switchover', { replicaset: RS }, 'wrong-token-wrong-token-wrong-token')).status).toBe(401);
    expect((await post(replica, '/switchover', { replicaset: RS }, await meshToken())).status).toBe(401); // not an operator credential
    const denied = await post(replica, '/switchover', { replicaset: RS }, onlooker);
    expect(denied).toMatchObject({ status: 403, json: { ok: false, reason: expect.stringContaining(`may not update statefulsets.apps/${RS} in namespace ${NS}`) } });
    expect((await post(replica, '/switchover', 'nonsense', token)).status).toBe(400);
    expect((await post(replica, '/switchover', { replicaset: RS, to: before.master }, token)).status).toBe(409);

    const started = Date.now();
    const r = await post(replica, '/switchover', { replicaset: RS, to: replica.name }, token);
    const tookMs = Date.now() - started;
    expect(r).toMatchObject({ status: 200, json: { ok: true, from: before.master, to: replica.name } });
    const after = await eventually(async () => {
      const a = await agreedMaster(pods);
      return a?.master === replica.name ? a : undefined;
    }, 30_000, 200);
    expect(after.term).toBeGreaterThan(before.term);
    const writable = await Promise.all(pods.map((p) => p.lua('return box.info.ro == false')));
    expect(writable.filter(Boolean)).toHaveLength(1);
    await replica.lua("box.space.kv:replace{10, 'after switchover'}");
    console.log(`switchover ${before.master} → ${replica.name} answered in ${tookMs} ms`);
  }, 120_000);

  it('GET /prestop: refused (409) on running pods, the master stays; hands over once the master pod is terminating', async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const master = pods.find((p) => p.name === before.master) as Pod;
    for (const p of pods) {
      const refused = await fetch(`http://${p.ip}:${agentPort}/prestop`, { signal: AbortSignal.timeout(10_000) });
      expect(refused.status, p.name).toBe(409);
      expect(await refused.json()).toMatchObject({ handedOver: false, reason: expect.stringContaining('not terminating') });
    }
    expect(await master.lua('return box.info.ro')).toBe(false);
    expect((await agreedMaster(pods))?.master).toBe(before.master);

    // Terminating as a kubelet would see it: a deletionTimestamp (a finalizer holds the pod, which no kubelet removes here).
    const hold = 'shoal.dev/test-hold';
    const oldUid = (await kube.pods.get(master.name)).metadata?.uid;
    await kube.pods.patch(master.name, { metadata: { finalizers: [hold] } }, MERGE_PATCH);
    await kube.pods.delete(master.name);
    const started = Date.now();
    const res = await fetch(`http://${master.ip}:${agentPort}/prestop`, { signal: AbortSignal.timeout(30_000) });
    const tookMs = Date.now() - started;
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    // The coordinator sees the deletion too and may have handed over before the hook asked.
    expect(body['handedOver'] === true || body['wasMaster'] === false, JSON.stringify(body)).toBe(true);
    expect(await master.lua('return box.info.ro')).toBe(true);

    // Let the pod go; the StatefulSet controller recreates it, and the test is its kubelet again.
    await kube.pods.patch(master.name, { metadata: { finalizers: null } }, MERGE_PATCH);
    await eventually(async () => {
      const p = await kube.pods.get(master.name).catch(() => undefined);
      return p?.metadata?.uid && p.metadata.uid !== oldUid ? true : undefined;
    }, 60_000, 200);
    await playKubelet(master.name, master.ip);
    const after = await eventually(async () => {
      const a = await agreedMaster(pods);
      return a && a.master !== before.master ? a : undefined;
    }, 60_000, 200);
    console.log(`/prestop of terminating master ${before.master} returned after ${tookMs} ms; ${after.master} is master`);
  }, 180_000);

  it('SIGKILL of the master Tarantool: a replica is promoted after the failover timeout, no acknowledged row is lost, the old master rejoins', async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const master = pods.find((p) => p.name === before.master) as Pod;
    await master.lua("box.space.kv:replace{20, 'before failover'}");
    const others = pods.filter((p) => p !== master);
    for (const p of others) await eventually(async () => ((await p.lua('return box.space.kv:get(20) ~= nil')) === true ? true : undefined), 10_000);
    const killedAt = Date.now();
    await master.t.kill('SIGKILL');
    const promoted = await eventually(async () => {
      const w = await Promise.all(others.map(async (p) => ((await p.lua('return box.info.ro == false')) === true ? p : null)));
      return w.find((p) => p !== null) ?? undefined;
    }, 30_000, 50);
    const failoverMs = Date.now() - killedAt;
    await promoted.lua("box.space.kv:replace{21, 'after failover'}");
    expect(await promoted.lua('return box.space.kv:get(20) ~= nil')).toBe(true);

    // The old master comes back with its data: it has nothing the new master lacks, so it rejoins as a replica.
    await master.t.spawn();
    const back = await eventually(async () => {
      const a = await agreedMaster(pods);
      return a && a.master === promoted.name ? a : undefined;
    }, 60_000, 200);
    expect(back.term).toBeGreaterThan(before.term);
    await eventually(async () => ((await master.lua('return box.space.kv:get(21) ~= nil')) === true ? true : undefined), 20_000);
    console.log(`failover after SIGKILL of ${master.name}: ${promoted.name} writable in ${failoverMs} ms (timeout 4000 ms); old master rejoined in ${Date.now() - killedAt} ms`);
  }, 180_000);

  /** Samples every running instance's read-only flag until stopped; reports the most writers seen at once. */
  function sampleWriters(): { stop: () => Promise<number> } {
    let most = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const w = await Promise.all(pods.filter((p) => p.t.running).map((p) => p.lua('return box.info.ro == false').catch(() => false)));
        most = Math.max(most, w.filter((x) => x === true).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return most;
      },
    };
  }

  it('with the API server down, the master keeps accepting writes and nobody is demoted; coordination resumes after', async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const master = pods.find((p) => p.name === before.master) as Pod;
    const writers = sampleWriters();
    await cp?.stopApiServer();
    try {
      // Longer than the Lease: every agent stops coordinating, none touches Tarantool.
      await eventually(async () => (pods.every((p) => !p.agent?.control?.isLeader()) ? true : undefined), 15_000, 100);
      for (let i = 0; i < 10; i++) {
        await master.lua(`box.space.kv:replace{${100 + i}, 'api down'}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect((await status(master.ip, agentPort)).instance.ro).toBe(false);
    } finally {
      await cp?.startApiServer();
    }
    const after = await eventually(async () => {
      const a = await agreedMaster(pods);
      return a && a.term > before.term ? a : undefined;
    }, 60_000, 200);
    expect(after.master).toBe(before.master);
    expect(await writers.stop()).toBe(1);
  }, 180_000);

  it("the master's agent dies: its Tarantool fences itself (watchdog) before a replica is promoted; the agent's return rejoins it", async () => {
    const before = await eventually(() => agreedMaster(pods), 60_000, 200);
    const master = pods.find((p) => p.name === before.master) as Pod;
    const writers = sampleWriters();
    const stoppedAt = Date.now();
    await master.agent?.stop();
    master.agent = undefined;
    await eventually(async () => ((await master.lua('return box.info.ro')) === true ? true : undefined), 15_000, 20);
    const fencedMs = Date.now() - stoppedAt;
    const others = pods.filter((p) => p !== master);
    const promoted = await eventually(async () => {
      const w = await Promise.all(others.map(async (p) => ((await p.lua('return box.info.ro == false')) === true ? p : null)));
      return w.find((p) => p !== null) ?? undefined;
    }, 30_000, 50);
    const promotedMs = Date.now() - stoppedAt;
    expect(fencedMs).toBeLessThan(promotedMs);
    await startPodAgent(master);
    const back = await eventually(async () => {
      const a = await agreedMaster(pods);
      return a && a.master === promoted.name ? a : undefined;
    }, 60_000, 200);
    expect(back.term).toBeGreaterThan(before.term);
    expect(await writers.stop()).toBe(1);
    console.log(`agent of master ${master.name} died: read-only after ${fencedMs} ms, ${promoted.name} writable after ${promotedMs} ms, rejoined after ${Date.now() - stoppedAt} ms`);
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

  it('the dead pod comes back and rejoins; scale 3 → 2 expels storage-2 from replication and _cluster', async () => {
    const dead = pods.find((p) => !p.agent) as Pod;
    await dead.t.spawn();
    await startPodAgent(dead);
    await eventually(() => agreedMaster(pods), 90_000, 200);

    await kube.statefulSets.patch(RS, { spec: { replicas: 2 } }, MERGE_PATCH);
    // Unscheduled pods go at once; the test, as kubelet, stops what ran in it.
    await eventually(async () => ((await kube.pods.list()).items.some((p) => p.metadata?.name === 'storage-2') ? undefined : true), 30_000, 100);
    const gone = pods.find((p) => p.name === 'storage-2') as Pod;
    await gone.agent?.stop();
    gone.agent = undefined;
    await gone.t.kill('SIGKILL');
    const rest = live();
    const expelled = await eventually(async () => {
      const views = await Promise.all(
        rest.map(async (p) => p.lua("local n = 0 for _ in box.space._cluster:pairs() do n = n + 1 end return {#box.cfg.replication, box.cfg.replication_synchro_quorum, n}")),
      );
      return views.every((v) => JSON.stringify(v) === JSON.stringify([2, 2, 2])) ? views : undefined;
    }, 60_000, 200);
    expect(expelled).toHaveLength(2);
    const st = await status(rest[0]?.ip ?? '', agentPort);
    expect(st.replicasets.find((r) => r.name === RS)?.instances.map((i) => i.pod).sort()).toEqual(['storage-0', 'storage-1']);

    // Everything above left its trace for `kubectl describe statefulset` and Prometheus.
    const reasons = new Set((await kube.events.list()).items.filter((e) => e.source?.component === 'shoal-agent').map((e) => e.reason));
    for (const r of ['Coordinator', 'Bootstrap', 'Join', 'Switchover', 'Promote', 'Rejoin', 'Expel']) expect(reasons).toContain(r);
    const leader = rest.find((p) => p.agent?.control?.isLeader()) as Pod;
    const metrics = await (await fetch(`http://${leader.ip}:${agentPort}/metrics`)).text();
    expect(metrics).toMatch(/shoal_coordinator_is_leader 1/);
    expect(metrics).toMatch(/shoal_coordinator_term [1-9]/);
    expect(metrics).toMatch(/shoal_coordinator_actions_total\{kind="expel",outcome="ok"\} [1-9]/);
  }, 240_000);
});

/** Mesh certificates from the tests' CA, naming each pod of this test's namespace and cluster (no webhook here). */
function testCertificates(pod: string): CertificateSource {
  return {
    obtain: () => credentialsFor(pod, { id: { namespace: NS, cluster: CLUSTER } }),
    renewLoop: async () => undefined,
  };
}
