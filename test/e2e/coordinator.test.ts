import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import type { V1ConfigMap, V1Service } from '@kubernetes/client-node';
import { DEFAULT_MESH_PORT, leaseName, meshSecretName, MESH_CA_VOLUME, MESH_TOKEN_KEY } from '../../common/names.js';
import { createNetFault } from '../../localcluster/netfault.js';
import { MeshCertificates } from '../../agent/mesh/certificates.js';
import type { MeshCredentials } from '../../agent/mesh/server.js';
import type { AgentStatus } from '../../common/status.js';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { createNamespace, deleteNamespace, kubeClients, kubectl, podRuntime, waitFor } from '../../tools/kube.js';
import { agentStatus, deployReplicaSet, instancesOf, statefulSet, waitForReplicaSet, type LiveInstance } from '../../tools/shoal-cluster.js';
import { evalOn, factsOf, persisted, scale } from '../support/instance-facts.js';

// Issue 5's "done when", end to end on the local cluster with real Tarantool: a labelled
// StatefulSet forms a replica set; two StatefulSets form one cluster whose on_topology hook sees
// both; scale up joins, scale down expels, a restarted pod keeps its identity; a SIGKILLed
// coordinator is replaced under a higher term; the mesh refuses strangers, malformed frames and
// forged old-term commands. (Masters writing through an API server outage: api-outage.test.ts.)
// Timings are recorded and printed, never asserted beyond the generous bounds of the waits.

const kubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const k = kubeClients(kubeconfig);
const netfault = createNetFault(inject('netfaultPrefix'));
const namespaces: string[] = [];
const timings: string[] = [];

function record(what: string, ms: number): void {
  const line = `${what}: ${(ms / 1000).toFixed(1)} s`;
  timings.push(line);
  process.stderr.write(`[e2e coordinator] ${line}\n`);
}

async function newNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(k.client, prefix);
  namespaces.push(ns);
  return ns;
}

afterAll(async () => {
  for (const ns of namespaces) await deleteNamespace(k.client, ns);
  if (timings.length) process.stderr.write(`[e2e coordinator] timings observed:\n  ${timings.join('\n  ')}\n`);
});

/** The upstream status a replica shows for the instance `uuid` (its master), or null. */
async function upstreamStatus(state: string, ns: string, pod: string, uuid: string): Promise<string | null> {
  const s = await evalOn(
    state,
    ns,
    pod,
    `local m = ... for _, r in pairs(box.info.replication) do if r.uuid == m then return r.upstream and r.upstream.status or nil end end return nil`,
    [uuid],
  );
  return typeof s === 'string' ? s : null;
}

async function readRow(state: string, ns: string, pod: string, key: number): Promise<unknown> {
  return evalOn(state, ns, pod, 'local key = ... local t = box.space.load:get(key) return t and t[2] or nil', [key]);
}


/** The parts of /status every agent must agree on. */
function agreedView(s: AgentStatus): string {
  return JSON.stringify({
    coordinator: s.coordinator.pod,
    term: s.coordinator.term,
    replicasets: s.replicasets.map((r) => ({ name: r.name, master: r.master, pods: r.instances.map((i) => i.pod).sort() })).sort((a, b) => a.name.localeCompare(b.name)),
  });
}

async function metricsOf(ip: string): Promise<string> {
  const res = await fetch(`http://${ip}:8080/metrics`, { signal: AbortSignal.timeout(3_000) });
  return res.text();
}

/** A counter with one label from Prometheus text (0 when the series does not exist yet). */
function counter(text: string, name: string, label: string, value: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${label}="${value}"}`));
  return line ? Number(line.split(/\s+/).at(-1)) : 0;
}

interface LogLine {
  time: number;
  msg: string;
  fields: Record<string, unknown>;
}

async function agentLog(state: string, ns: string, pod: string): Promise<LogLine[]> {
  const file = podRuntime(state, ns, pod)?.logPath('shoal-agent');
  if (!file) return [];
  const text = await readFile(file, 'utf8').catch(() => '');
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      out.push({ time: Date.parse(String(o.time)), msg: String(o.msg), fields: o });
    } catch {
      // not a log line of the agent
    }
  }
  return out;
}

async function statefulSetEvents(ns: string, name: string): Promise<string[]> {
  const events = await k.in(ns).events.list({ fieldSelector: `involvedObject.name=${name},involvedObject.kind=StatefulSet` });
  return events.items.map((e) => `${e.reason}: ${e.message ?? ''}`);
}


/** A fresh namespace with a labelled `store` StatefulSet formed into a replica set; returns its master. */
async function formReplicaSet(prefix: string, cluster: string, replicas: number): Promise<{ ns: string; master: string }> {
  const ns = await newNamespace(prefix);
  const t0 = Date.now();
  await deployReplicaSet(k, { namespace: ns, cluster, name: 'store', replicas });
  const master = await waitForReplicaSet(k, ns, 'store', replicas, { timeoutMs: 180_000 });
  record(`cluster ${cluster}: ${replicas}-replica StatefulSet applied → every pod Ready, one agreed master`, Date.now() - t0);
  return { ns, master };
}

describe('the coordinator (issue 5), end to end', () => {
  it('forms a 3-replica set from a labelled StatefulSet: one master, two following replicas, replicated data, one agreed /status', async () => {
    const { ns, master } = await formReplicaSet('co-form', 'form', 3);

    // Every agent publishes the same view (it may still settle for a moment after Ready).
    const inst = await waitFor(
      'every /status agreeing on coordinator, term, master and members',
      async () => {
        const all = await instancesOf(k, ns, 'store');
        const views = new Set(all.map((i) => agreedView(i.status)));
        return all.length === 3 && views.size === 1 ? all : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const view = inst[0]!.status;
    expect(view.replicasets).toHaveLength(1);
    expect(view.replicasets[0]?.master).toBe(master);
    expect(view.replicasets[0]?.instances.map((i) => i.pod).sort()).toEqual(['store-0', 'store-1', 'store-2']);
    expect(inst.filter((i) => i.status.coordinator.self).map((i) => i.pod)).toEqual([view.coordinator.pod]);
    const envelope = await persisted(k, ns, 'form');
    expect(envelope.coordinator).toBe(view.coordinator.pod);
    expect(envelope.term).toBe(view.coordinator.term);

    const masterInst = inst.find((i) => i.pod === master)!;
    const replicas = inst.filter((i) => i.pod !== master);
    expect(masterInst.status.instance).toMatchObject({ role: 'master', ro: false });
    for (const r of replicas) expect(r.status.instance).toMatchObject({ role: 'replica', ro: true });
    // Identity as SPEC §4: distinct UUIDs, the one Tarantool reports.
    expect(new Set(inst.map((i) => i.status.instance.uuid)).size).toBe(3);

    // A write on the master (is_sync: acknowledged by a quorum) is read on both replicas.
    await evalOn(stateFile, ns, master, `box.space.load:insert{1, 'formed'} return true`);
    for (const r of replicas) {
      const facts = await factsOf(stateFile, ns, r.pod);
      expect(facts.uuid).toBe(r.status.instance.uuid);
      expect(facts.ro).toBe(true);
      expect(await upstreamStatus(stateFile, ns, r.pod, masterInst.status.instance.uuid)).toBe('follow');
      await waitFor(`row 1 on ${r.pod}`, async () => (await readRow(stateFile, ns, r.pod, 1)) === 'formed', { timeoutMs: 10_000 });
    }
    const mf = await factsOf(stateFile, ns, master);
    expect(mf).toMatchObject({ ro: false, quorum: 2 });
    expect(mf.replication).toHaveLength(3);
    expect(mf.cluster.sort()).toEqual(inst.map((i) => i.status.instance.uuid).sort());
    const events = await statefulSetEvents(ns, 'store');
    process.stderr.write(`[e2e coordinator] StatefulSet events: ${events.join(' | ')}\n`);
    expect(events.some((e) => e.startsWith('Bootstrap'))).toBe(true);
  });

  it('forms one cluster of two replica sets from two StatefulSets with one cluster label; on_topology sees both', async () => {
    const ns = await newNamespace('co-two');
    const app = `
require('shoal').cfg{ work_dir = '/var/lib/tarantool', memtx_memory = 32 * 1024 * 1024 }
require('shoal').on_topology(function(t) rawset(_G, 'last_topology', t) end)
`;
    await applyObjects(k.client, agentRbacObjects(ns));
    const t0 = Date.now();
    for (const name of ['alpha', 'beta']) {
      const cm: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-app`, namespace: ns }, data: { 'init.lua': app } };
      const svc: V1Service = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: ns },
        spec: { clusterIP: 'None', selector: { app: name }, ports: [{ name: 'iproto', port: 3301 }] },
      };
      await applyObjects(k.client, [cm, svc]);
      await k.in(ns).statefulSets.create(statefulSet({ namespace: ns, cluster: 'duo', name, replicas: 2 }));
    }
    const masters = {
      alpha: await waitForReplicaSet(k, ns, 'alpha', 2, { timeoutMs: 180_000 }),
      beta: await waitForReplicaSet(k, ns, 'beta', 2, { timeoutMs: 180_000 }),
    };
    record('two 2-replica StatefulSets of one cluster → all Ready, a master each', Date.now() - t0);

    const all = [...(await instancesOf(k, ns, 'alpha')), ...(await instancesOf(k, ns, 'beta'))];
    // One cluster: one coordinator for all four agents, and each /status lists both replica sets.
    expect(new Set(all.map((i) => i.status.coordinator.pod)).size).toBe(1);
    for (const i of all) {
      expect(i.status.cluster).toBe('duo');
      expect(i.status.replicasets.map((r) => [r.name, r.master]).sort()).toEqual([
        ['alpha', masters.alpha],
        ['beta', masters.beta],
      ]);
    }
    const uuids = new Map(all.map((i) => [i.pod, i.status.instance.uuid]));

    interface Topo {
      cluster: string;
      namespace: string;
      replicasets: Array<{ name: string; uuid: string; master: string | null; instances: Array<{ pod: string; uuid: string; uri: string | null; master: boolean }> }>;
    }
    for (const i of all) {
      const topo = await waitFor(
        `on_topology on ${i.pod} received both replica sets with their masters`,
        async () => {
          const t = (await evalOn(stateFile, ns, i.pod, `return rawget(_G, 'last_topology')`)) as Topo | null;
          const ok =
            t?.replicasets?.length === 2 &&
            t.replicasets.every((rs) => rs.master === masters[rs.name as 'alpha' | 'beta'] && rs.instances.length === 2 && rs.instances.every((x) => x.uri !== null));
          return ok ? t : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(topo.cluster).toBe('duo');
      expect(topo.namespace).toBe(ns);
      for (const rs of topo.replicasets) {
        for (const x of rs.instances) {
          expect(x.uuid).toBe(uuids.get(x.pod));
          expect(x.master).toBe(x.pod === rs.master);
        }
      }
      // Each replica set is its own Tarantool replica set: different replicaset UUIDs.
      expect(new Set(topo.replicasets.map((rs) => rs.uuid)).size).toBe(2);
    }
    // And they replicate only within themselves.
    for (const i of all) {
      const f = await factsOf(stateFile, ns, i.pod);
      expect(f.cluster).toHaveLength(2);
      expect(f.replication).toHaveLength(2);
    }
  });

  it('joins on scale 3 → 5, expels on 5 → 2 (replication, _cluster, quorum), and never expels a pod that is only recreated', async () => {
    const formed = await formReplicaSet('co-scale', 'scale', 3);
    const ns = formed.ns;
    let master = formed.master;
    await evalOn(stateFile, ns, master, `box.space.load:insert{1, 'before-scale'} return true`);

    // 3 → 5: two replicas join, follow the master and get the data.
    let t = Date.now();
    await scale(kubeconfig, ns, 'store', 5);
    master = await waitForReplicaSet(k, ns, 'store', 5, { timeoutMs: 180_000 });
    const inst = await instancesOf(k, ns, 'store');
    const masterUuid = inst.find((i) => i.pod === master)!.status.instance.uuid;
    await waitFor(
      'every member replicating from all five, quorum 3',
      async () => {
        for (const i of inst) {
          const f = await factsOf(stateFile, ns, i.pod);
          if (f.replication.length !== 5 || f.quorum !== 3 || f.cluster.length !== 5) return undefined;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    record('scale 3 → 5 → two replicas joined (5 Ready, replication 5, quorum 3)', Date.now() - t);
    for (const pod of ['store-3', 'store-4']) {
      if (pod === master) continue;
      expect(await upstreamStatus(stateFile, ns, pod, masterUuid)).toBe('follow');
      await waitFor(`row 1 on ${pod}`, async () => (await readRow(stateFile, ns, pod, 1)) === 'before-scale', { timeoutMs: 10_000 });
    }
    const uuidOf = new Map(inst.map((i) => [i.pod, i.status.instance.uuid]));
    const ipOf = new Map(inst.map((i) => [i.pod, i.ip]));

    // 5 → 2: three expelled from every member's replication and from the master's _cluster.
    t = Date.now();
    await scale(kubeconfig, ns, 'store', 2);
    master = await waitForReplicaSet(k, ns, 'store', 2, { timeoutMs: 180_000 });
    const kept = ['store-0', 'store-1'];
    const keptUuids = kept.map((p) => uuidOf.get(p)!).sort();
    const keptAddrs = kept.map((p) => `${ipOf.get(p)}:3301`).sort();
    await waitFor(
      'store-2..4 expelled: replication and _cluster of both members hold only store-0/1, quorum 2',
      async () => {
        for (const pod of kept) {
          const f = await factsOf(stateFile, ns, pod);
          if (JSON.stringify(f.cluster) !== JSON.stringify(keptUuids)) return undefined;
          if (JSON.stringify(f.replication) !== JSON.stringify(keptAddrs) || f.quorum !== 2) return undefined;
        }
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    record('scale 5 → 2 → three expelled (replication, _cluster, quorum 2)', Date.now() - t);
    const events = await statefulSetEvents(ns, 'store');
    process.stderr.write(`[e2e coordinator] StatefulSet events: ${events.join(' | ')}\n`);
    for (const pod of ['store-2', 'store-3', 'store-4']) expect(events.some((e) => e.startsWith('Expel') && e.includes(pod))).toBe(true);
    for (const pod of kept) expect(events.some((e) => e.startsWith('Expel') && e.includes(pod))).toBe(false);

    // A replica deleted and recreated keeps its UUID and its data, and stays a member throughout.
    const victim = kept.find((p) => p !== master)!;
    const victimUuid = uuidOf.get(victim)!;
    const oldUid = (await k.in(ns).pods.get(victim)).metadata?.uid;
    const missing: string[] = [];
    const watching = new AbortController();
    const watch = (async () => {
      while (!watching.signal.aborted) {
        try {
          const f = await factsOf(stateFile, ns, master);
          if (!f.cluster.includes(victimUuid)) missing.push(`_cluster at ${new Date().toISOString()}`);
          const env = await persisted(k, ns, 'scale');
          if (!JSON.stringify(env.state).includes(victimUuid)) missing.push(`state ConfigMap at ${new Date().toISOString()}`);
        } catch {
          // a busy console or API: sample again
        }
        await sleep(300, undefined, { signal: watching.signal }).catch(() => undefined);
      }
    })();
    t = Date.now();
    const del = await kubectl(kubeconfig, ['-n', ns, 'delete', 'pod', victim, '--wait=false']);
    expect(del.code).toBe(0);
    try {
      await waitFor(
        `${victim} recreated`,
        async () => (await k.in(ns).pods.get(victim)).metadata?.uid !== oldUid,
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      await waitForReplicaSet(k, ns, 'store', 2, { timeoutMs: 180_000 });
      record(`replica ${victim} deleted → recreated, Ready and following`, Date.now() - t);
      await sleep(3_000); // give a wrong expel a few rounds to happen
    } finally {
      watching.abort();
      await watch;
    }
    expect(missing).toEqual([]);
    const vf = await factsOf(stateFile, ns, victim);
    expect(vf.uuid).toBe(victimUuid);
    expect(await readRow(stateFile, ns, victim, 1)).toBe('before-scale');
    expect(await upstreamStatus(stateFile, ns, victim, uuidOf.get(master)!)).toBe('follow');
    await evalOn(stateFile, ns, master, `box.space.load:insert{2, 'after-restart'} return true`);
    await waitFor(`row 2 on ${victim}`, async () => (await readRow(stateFile, ns, victim, 2)) === 'after-restart', { timeoutMs: 10_000 });
    expect((await statefulSetEvents(ns, 'store')).some((e) => e.startsWith('Expel') && e.includes(victim))).toBe(false);
  });

  // The kubelet restarts the killed agent within seconds; that process frees the Lease its pod's
  // earlier process held (same pod UID) and leaves it to a peer, so another agent leads well inside
  // the lease duration instead of the restarted one winning the race after it (agent/lease/timing.ts).
  it('replaces a SIGKILLed coordinator: another agent takes the Lease, the term grows, old-term commands are never applied', async () => {
    const { ns } = await formReplicaSet('co-lease', 'lease', 3);
    const before = await waitFor(
      'one agreed coordinator',
      async () => {
        const all = await instancesOf(k, ns, 'store');
        return all.length === 3 && new Set(all.map((i) => agreedView(i.status))).size === 1 ? all : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const oldCoordinator = before[0]!.status.coordinator.pod!;
    const oldTerm = before[0]!.status.coordinator.term;
    const lease = await k.in(ns).leases.get(leaseName('lease'));
    expect(lease.spec?.holderIdentity).toBe(oldCoordinator);
    const leaseSeconds = lease.spec?.leaseDurationSeconds ?? 15;

    // The persisted term, sampled throughout: it must never go back.
    const terms: number[] = [];
    const sampling = new AbortController();
    const sampler = (async () => {
      while (!sampling.signal.aborted) {
        await persisted(k, ns, 'lease').then((e) => terms.push(e.term), () => undefined);
        await sleep(250, undefined, { signal: sampling.signal }).catch(() => undefined);
      }
    })();

    const pid = podRuntime(stateFile, ns, oldCoordinator)?.pids['shoal-agent'];
    expect(pid).toBeGreaterThan(0);
    const killedAt = Date.now();
    process.kill(pid!, 'SIGKILL');
    let takenOver: { holder: string; at: number };
    let newTerm: number;
    let final: LiveInstance[] = [];
    try {
      takenOver = await waitFor(
        'another agent holding the Lease',
        async () => {
          const l = await k.in(ns).leases.get(leaseName('lease'));
          const holder = l.spec?.holderIdentity;
          return holder && holder !== oldCoordinator ? { holder, at: Date.now() } : undefined;
        },
        { timeoutMs: (leaseSeconds + 30) * 1000, intervalMs: 200 },
      );
      record(`coordinator agent SIGKILLed → Lease taken by ${takenOver.holder} (lease ${leaseSeconds} s)`, takenOver.at - killedAt);
      expect(takenOver.at - killedAt).toBeLessThan(leaseSeconds * 1000);
      const env = await waitFor(
        'the new coordinator persisting its term',
        async () => {
          const e = await persisted(k, ns, 'lease');
          return e.coordinator === takenOver.holder && e.term > oldTerm ? e : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      newTerm = env.term;
      record(`Lease taken → term ${oldTerm} → ${newTerm} persisted`, Date.now() - takenOver.at);

      // The restarted agent rejoins as a follower of the new coordinator; all agree again.
      const after = await waitFor(
        'every /status naming the new coordinator, the restarted agent not coordinating',
        async () => {
          const all = await instancesOf(k, ns, 'store');
          const ok =
            all.length === 3 &&
            new Set(all.map((i) => agreedView(i.status))).size === 1 &&
            all.every((i) => i.status.coordinator.pod === takenOver.holder && i.status.coordinator.term >= newTerm) &&
            all.find((i) => i.pod === oldCoordinator)?.status.coordinator.self === false;
          return ok ? all : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      const restartedPid = podRuntime(stateFile, ns, oldCoordinator)?.pids['shoal-agent'];
      expect(restartedPid).toBeGreaterThan(0);
      expect(restartedPid).not.toBe(pid);
      record('SIGKILL → the restarted agent rejoined, all /status agree', Date.now() - killedAt);
      await waitForReplicaSet(k, ns, 'store', 3, { timeoutMs: 120_000 });
      expect(after.filter((i) => i.status.coordinator.self).map((i) => i.pod)).toEqual([takenOver.holder]);
      final = after;
    } finally {
      sampling.abort();
      await sampler;
    }
    process.stderr.write(`[e2e coordinator] persisted terms sampled: ${[...new Set(terms)].join(' → ')}\n`);
    for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThanOrEqual(terms[i - 1]!);
    expect(terms.at(-1)).toBeGreaterThanOrEqual(newTerm);

    // No agent applied a command of a term older than the new coordinator's after it took over.
    const stale: string[] = [];
    for (const pod of ['store-0', 'store-1', 'store-2']) {
      for (const l of await agentLog(stateFile, ns, pod)) {
        if (l.msg !== 'command applied' || l.time <= takenOver.at) continue;
        const term = Number(l.fields.commandTerm);
        if (term < newTerm) stale.push(`${pod}: ${l.fields.kind as string} of term ${term} at ${new Date(l.time).toISOString()}`);
      }
    }
    expect(stale).toEqual([]);
    // The restarted agent freed the Lease its killed predecessor held instead of waiting it out.
    const freed = (await agentLog(stateFile, ns, oldCoordinator)).filter((l) => l.msg === 'released the coordinator lease of an earlier agent process of this pod');
    expect(freed.length).toBeGreaterThan(0);

    // The old coordinator's voice is worth nothing now: a command signed with its name and its last
    // term (sent over a connection whose certificate is that pod's: made from the token in its
    // volume) is refused by the third agent. The pod's own agent is frozen meanwhile so that its
    // link does not replace ours.
    const third = final.find((i) => i.pod !== oldCoordinator && i.pod !== takenOver.holder)!;
    const thirdFacts = await factsOf(stateFile, ns, third.pod);
    const creds = await certificateFromVolume(ns, oldCoordinator);
    const thaw = freezeAgent(ns, oldCoordinator);
    let ack: MeshAck;
    try {
      const impostor = await waitFor('a link as the old coordinator', () => openMesh(meshUrl(third.ip), creds, oldCoordinator).catch(() => undefined), { timeoutMs: 20_000, intervalMs: 500 });
      try {
      // Whatever would change this instance's role: fence a master, promote a replica.
      const kind = thirdFacts.ro ? 'promote' : 'fence';
      const payload = thirdFacts.ro
        ? { ...commandBase('store', third.pod), replication: [`${third.ip}:3301`], synchroQuorum: 1 }
        : commandBase('store', third.pod);
        impostor.ws.send(JSON.stringify({ type: 'command', v: 1, id: 'old-term-replay', term: oldTerm, from: oldCoordinator, kind, payload }));
        ack = await waitFor('the ack of the old-term command', () => acksOf(impostor).find((a) => a.id === 'old-term-replay'), { timeoutMs: 15_000, intervalMs: 100 });
      } finally {
        impostor.ws.terminate();
      }
    } finally {
      thaw();
    }
    process.stderr.write(`[e2e coordinator] command of term ${oldTerm} signed ${oldCoordinator} → ${third.pod}: ${JSON.stringify(ack)}\n`);
    expect(ack.ok).toBe(false);
    expect(ack.error).toMatch(/^refused: stale term/);
    expect((await factsOf(stateFile, ns, third.pod)).ro).toBe(thirdFacts.ro);
  });

  // Issue 14: a coordinator that lost the mesh majority but still reaches the API server used to
  // renew its Lease for ever, so the majority side could never elect one that can act. It releases
  // the Lease once cut off for the self-fence deadline; a pod of the majority takes it at once.
  it('a coordinator cut off from the mesh (the API server still reachable) releases the Lease; the majority elects another', async () => {
    const { ns } = await formReplicaSet('co-cut', 'cut', 3);
    const coordinator = (await k.in(ns).leases.get(leaseName('cut'))).spec?.holderIdentity;
    expect(coordinator).toMatch(/^store-\d$/);
    const info = podRuntime(stateFile, ns, coordinator!);
    expect(info?.ip).toBeTruthy();
    const target = { ip: info!.ip!, unixUid: info!.unixUid! };
    const mesh = { port: DEFAULT_MESH_PORT } as const;
    const cutAt = Date.now();
    await netfault.cutOff(target, mesh);
    try {
      const taken = await waitFor(
        'another agent holding the Lease',
        async () => {
          const holder = (await k.in(ns).leases.get(leaseName('cut'))).spec?.holderIdentity;
          return holder && holder !== coordinator ? holder : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      record(`coordinator ${coordinator} cut from the mesh → Lease released, taken by ${taken}`, Date.now() - cutAt);
      // It gave the Lease up itself: the agent says so (not a lease that merely expired).
      const released = (await agentLog(stateFile, ns, coordinator!)).filter((l) => l.msg === 'stepping down as coordinator' || l.msg === 'released the coordinator lease');
      expect(released.map((l) => l.msg)).toEqual(expect.arrayContaining(['stepping down as coordinator', 'released the coordinator lease']));
      // While cut off it does not take the Lease back.
      await sleep(3_000);
      expect((await k.in(ns).leases.get(leaseName('cut'))).spec?.holderIdentity).toBe(taken);
    } finally {
      await netfault.heal(target, mesh);
    }
    // Healed: one agreed view again, one master, every replica following.
    await waitForReplicaSet(k, ns, 'store', 3, { timeoutMs: 120_000 });
    record('mesh healed → the replica set settled again', Date.now() - cutAt);
  });

  // Issue 14, hole 6: the mesh trusts certificates from the webhook's CA, each naming one pod.
  it('refuses peers without a mesh certificate and a pod acting as another, drops malformed frames, ignores forged commands', async () => {
    const { ns, master } = await formReplicaSet('co-mesh', 'mesh', 3);
    const inst = await instancesOf(k, ns, 'store');
    const target = inst.find((i) => i.pod !== master)!;
    const forger = inst.find((i) => i.pod !== master && i.pod !== target.pod)!;
    const url = meshUrl(target.ip);
    const metricsBefore = await metricsOf(target.ip);
    const current = target.status.coordinator.term;
    const holder = target.status.coordinator.pod!;

    // The mesh formed with certificates: every agent holds one from the webhook naming its pod.
    for (const i of inst) {
      const got = (await agentLog(stateFile, ns, i.pod)).filter((l) => l.msg === 'got a mesh certificate');
      expect(got.length, i.pod).toBeGreaterThan(0);
      expect(String(got[0]!.fields.subject)).toBe(`URI:spiffe://shoal.dev/ns/${ns}/cluster/mesh/pod/${i.pod}`);
    }
    // The old shared Secret opens nothing: not in clear (ws://), not over TLS without a certificate,
    // and the webhook issues nothing for it.
    const secretToken = await meshToken(ns, 'mesh');
    expect(await dialOutcome(`ws://${target.ip}:${DEFAULT_MESH_PORT}/mesh`, { headers: { authorization: `Bearer ${secretToken}`, 'x-shoal-pod': holder } })).toMatch(/^error/);
    const ca = await meshCaOf(ns, target.pod);
    expect(await dialOutcome(url, { ca: ca.caCert, checkServerIdentity: anyName, headers: { authorization: `Bearer ${secretToken}`, 'x-shoal-pod': holder } })).toMatch(/^error/);
    expect((await certificateRequest(ca, secretToken)).status).toBe(401);

    // A forged peer: a process holding the mesh-CA token from the forger pod's volume gets a
    // certificate for that pod, and only that pod: claiming the coordinator is refused before the handshake.
    const creds = await certificateFromVolume(ns, forger.pod);
    expect(await dialOutcome(url, { ...creds, checkServerIdentity: anyName, headers: { 'x-shoal-pod': holder } })).toBe('HTTP 403');
    // As itself it gets in (its agent frozen, so the real link does not replace ours), and whatever
    // it says as someone else, or with a term that is not its own, does nothing.
    const thaw = freezeAgent(ns, forger.pod);
    let acks: MeshAck[];
    try {
      const peer = await waitFor('a link as the forger pod', () => openMesh(url, creds, forger.pod).catch(() => undefined), { timeoutMs: 20_000, intervalMs: 500 });
      try {
        peer.ws.send('this is not json');
        peer.ws.send(JSON.stringify({ type: 'heartbeat', v: 1, pod: forger.pod })); // missing fields
        peer.ws.send(JSON.stringify({ type: 'gossip', v: 1 }));
        // A complete, valid promote for the replica: only its sender and term stand between it and a second master.
        const payload = { ...commandBase('store', target.pod), replication: [`${target.ip}:3301`], synchroQuorum: 1 };
        const promote = (id: string, term: number, from: string): string => JSON.stringify({ type: 'command', v: 1, id, term, from, kind: 'promote', payload });
        peer.ws.send(promote('forged-old', Math.max(0, current - 1), forger.pod));
        peer.ws.send(promote('forged-same', current, forger.pod));
        peer.ws.send(promote('forged-future', current + 10, forger.pod));
        // Claiming to be the coordinator on the forger's certificate: an identity mismatch, dropped.
        peer.ws.send(promote('forged-holder', current, holder));
        await waitFor('acks of the three forged commands', () => acksOf(peer).length >= 3, { timeoutMs: 15_000, intervalMs: 100 });
        await sleep(1_000); // would an ack of the identity-mismatched command come? It must not.
        acks = acksOf(peer);
      } finally {
        peer.ws.terminate();
      }
    } finally {
      thaw();
    }
    process.stderr.write(`[e2e coordinator] forged command acks: ${JSON.stringify(acks)}\n`);
    expect(acks.map((a) => a.id).sort()).toEqual(['forged-future', 'forged-old', 'forged-same']);
    for (const a of acks) {
      expect(a.ok).toBe(false);
      expect(a.error).toMatch(/^refused/);
    }
    expect(acks.find((a) => a.id === 'forged-old')?.error).toMatch(/stale term/);

    // No effect on Tarantool: still a read-only replica of the same master with the same quorum.
    const f = await factsOf(stateFile, ns, target.pod);
    expect(f.ro).toBe(true);
    expect(f.quorum).toBe(2);
    expect(f.replication).toHaveLength(3);
    const s = await agentStatus(target.ip);
    expect(s?.instance.role).toBe('replica');
    expect(s?.replicasets[0]?.master).toBe(master);

    // Counted in /metrics …
    const metricsAfter = await metricsOf(target.ip);
    const delta = (name: string, label: string, value: string): number => counter(metricsAfter, name, label, value) - counter(metricsBefore, name, label, value);
    expect(delta('shoal_mesh_connections_rejected_total', 'reason', 'claim_mismatch')).toBe(1);
    expect(delta('shoal_mesh_connections_rejected_total', 'reason', 'tls')).toBeGreaterThanOrEqual(2);
    expect(delta('shoal_mesh_messages_dropped_total', 'reason', 'not_json')).toBe(1);
    expect(delta('shoal_mesh_messages_dropped_total', 'reason', 'bad_field')).toBeGreaterThanOrEqual(1);
    expect(delta('shoal_mesh_messages_dropped_total', 'reason', 'unknown_type')).toBe(1);
    expect(delta('shoal_mesh_messages_dropped_total', 'reason', 'identity_mismatch')).toBe(1);
    expect(delta('shoal_mesh_messages_dropped_total', 'reason', 'stale_term')).toBe(3);
    expect(delta('shoal_mesh_commands_received_total', 'result', 'refused')).toBe(3);
    expect(delta('shoal_mesh_commands_received_total', 'result', 'ok')).toBe(0);
    // … and logged.
    const log = await agentLog(stateFile, ns, target.pod);
    const reasons = (msg: string): unknown[] => log.filter((l) => l.msg === msg).map((l) => l.fields.reason);
    expect(reasons('refused a mesh connection')).toEqual(expect.arrayContaining(['tls', 'claim_mismatch']));
    expect(reasons('dropped an invalid mesh message')).toEqual(expect.arrayContaining(['not_json', 'unknown_type', 'identity_mismatch']));
    expect(log.filter((l) => l.msg === 'refused a coordinator command').map((l) => l.fields.id).sort()).toEqual(['forged-future', 'forged-old', 'forged-same']);
  });

});

async function meshToken(ns: string, cluster: string): Promise<string> {
  const secret = await k.in(ns).secrets.get(meshSecretName(cluster));
  return Buffer.from(secret.data?.[MESH_TOKEN_KEY] ?? '', 'base64').toString('utf8');
}

/** A valid command payload's common part (agent/wire/command-payload.ts): only the term can stop it. */
function commandBase(replicaset: string, pod: string): Record<string, string | number | null> {
  return { replicaset, pod, reason: 'forged by the e2e test', master: null, timeoutMs: 5_000 };
}

interface MeshAck {
  type: 'ack';
  id: string;
  ok: boolean;
  error?: string;
}

function acksOf(peer: MeshPeer): MeshAck[] {
  return peer.messages.filter((m): m is MeshAck & Record<string, unknown> => m.type === 'ack');
}

/** The agent's mesh endpoint (SPEC §4). */
const meshUrl = (ip: string): string => `wss://${ip}:${DEFAULT_MESH_PORT}/mesh`;

/** Peers are pod IPs: the certificate's name, not the host, is what these tests look at. */
const anyName = (() => undefined) as unknown as () => boolean;

/** Where the pod's agent asks for its certificate and the CA it trusts (from the injected env). */
async function meshCaOf(ns: string, pod: string): Promise<{ url: string; caCert: string }> {
  const spec = (await k.in(ns).pods.get(pod)).spec!;
  const agent = [...spec.containers, ...(spec.initContainers ?? [])].find((c) => c.name === 'shoal-agent')!;
  const env = (name: string): string => agent.env!.find((e) => e.name === name)!.value!;
  return { url: env('SHOAL_MESH_CA_URL'), caCert: env('SHOAL_MESH_CA_CERT') };
}

/** POST /mesh/certificate with `token`; the status and body. */
async function certificateRequest(ca: { url: string; caCert: string }, token: string): Promise<{ status: number; body: string }> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL('/mesh/certificate', ca.url), { method: 'POST', ca: ca.caCert, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }));
  });
}

/**
 * What a process that read the pod's mesh-CA token from its volume (the kubelet's files on this
 * machine) can get: a certificate for that pod, with the agent's own client code.
 */
async function certificateFromVolume(ns: string, pod: string): Promise<MeshCredentials> {
  const dir = podRuntime(stateFile, ns, pod)?.hostPathOf(MESH_CA_VOLUME);
  if (!dir) throw new Error(`${pod} has no ${MESH_CA_VOLUME} volume on this machine`);
  const certs = new MeshCertificates({ ...(await meshCaOf(ns, pod)), tokenFile: `${dir}/token`, logger: pino({ level: 'silent' }) });
  return certs.obtain(AbortSignal.timeout(20_000));
}

/** SIGSTOPs the pod's agent (its process group); returns the SIGCONT. */
function freezeAgent(ns: string, pod: string): () => void {
  const pgid = podRuntime(stateFile, ns, pod)?.pids['shoal-agent'];
  if (!pgid) throw new Error(`${pod} has no running agent`);
  process.kill(-pgid, 'SIGSTOP');
  return () => process.kill(-pgid, 'SIGCONT');
}

/** Dials expecting a refusal: 'HTTP <status>', or 'error: …' when TLS (or the socket) refuses. */
function dialOutcome(url: string, options: WebSocket.ClientOptions): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5_000, ...options });
    ws.on('unexpected-response', (req, res) => {
      resolve(`HTTP ${res.statusCode ?? 0}`);
      req.destroy();
    });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

interface MeshPeer {
  ws: WebSocket;
  messages: Array<{ type?: string } & Record<string, unknown>>;
}

function openMesh(url: string, creds: MeshCredentials, pod: string): Promise<MeshPeer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...creds, checkServerIdentity: anyName, headers: { 'x-shoal-pod': pod }, handshakeTimeout: 5_000 });
    const peer: MeshPeer = { ws, messages: [] };
    ws.on('message', (data) => {
      try {
        peer.messages.push(JSON.parse(String(data)) as MeshPeer['messages'][number]);
      } catch {
        // not ours to judge
      }
    });
    ws.on('open', () => resolve(peer));
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`the mesh refused a valid certificate: HTTP ${res.statusCode}`));
    });
    ws.on('error', (err) => reject(err));
  });
}
