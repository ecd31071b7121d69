import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AgentStatus, StatusSharding } from '../../common/status.js';
import { repoRoot } from '../../demo/repo-root.js';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { condition, createNamespace, deleteNamespace, kubeClients, kubectl, waitFor } from '../../tools/kube.js';
import { agentStatus, consoleEval } from '../../tools/shoal-cluster.js';

// Issue 15's first "done when", on the shared local cluster with real Tarantool 3.8 and vshard
// 0.1.42: examples/sharded.yaml comes up from `kubectl apply` alone — two storage replica sets of 3,
// a router replica set of 2, one cluster label — the buckets are bootstrapped once (one Event, the
// state's record), every bucket is active on exactly one storage replica set, and kv_put / kv_get
// through either router work. Waits are generous bounds; timings are printed, never asserted.

const kubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const k = kubeClients(kubeconfig);

const STORAGES = ['storage-a', 'storage-b'];
const ROUTERS = ['router-0', 'router-1'];
const PODS = [...STORAGES.flatMap((s) => [0, 1, 2].map((n) => `${s}-${n}`)), ...ROUTERS];
const BUCKET_COUNT = 3000;
const FORM_TIMEOUT_MS = 300_000;

let ns = '';
const t0 = Date.now();
const log = (line: string): void => void process.stderr.write(`[e2e sharded] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${line}\n`);

/** Every agent's /status, by pod (pods whose agent does not answer are missing). */
async function statuses(): Promise<Map<string, AgentStatus>> {
  const pods = await k.in(ns).pods.list();
  const out = new Map<string, AgentStatus>();
  for (const p of pods.items) {
    const s = await agentStatus(p.status?.podIP);
    if (s && p.metadata?.name) out.set(p.metadata.name, s);
  }
  return out;
}

beforeAll(async () => {
  ns = await createNamespace(k.client, 'shard');
  await applyObjects(k.client, agentRbacObjects(ns));
  const applied = await kubectl(kubeconfig, ['apply', '-n', ns, '-f', path.join(repoRoot(), 'examples', 'sharded.yaml')]);
  if (applied.code !== 0) throw new Error(`kubectl apply examples/sharded.yaml: ${applied.stderr}`);
  log(`applied examples/sharded.yaml in ${ns}`);
});

afterAll(async () => {
  if (ns) await deleteNamespace(k.client, ns);
});

describe('examples/sharded.yaml from kubectl apply alone', () => {
  let sharding: StatusSharding;

  it('forms: 8 Ready pods, a master per storage replica set, buckets bootstrapped and spread', async () => {
    sharding = await waitFor(
      'every pod Ready and the buckets bootstrapped, all active',
      async () => {
        const pods = await k.in(ns).pods.list();
        const ready = pods.items.filter((p) => condition(p, 'Ready') === 'True').map((p) => p.metadata?.name ?? '');
        if (!PODS.every((p) => ready.includes(p))) return undefined;
        const st = await statuses();
        const sh = st.get('router-0')?.sharding;
        if (!sh || sh.bootstrap.state !== 'done') return undefined;
        const active = sh.replicasets.filter((r) => r.role === 'storage').reduce((n, r) => n + (r.buckets?.active ?? 0), 0);
        return active === BUCKET_COUNT ? sh : undefined;
      },
      { timeoutMs: FORM_TIMEOUT_MS, intervalMs: 1_000 },
    );
    log(`formed: ${JSON.stringify(sharding.replicasets)}`);
    expect(sharding.replicasets.map((r) => [r.name, r.role]).sort()).toEqual([
      ['router', 'router'],
      ['storage-a', 'storage'],
      ['storage-b', 'storage'],
    ]);
    expect(sharding.bootstrap).toMatchObject({ state: 'done', how: 'bootstrapped' });
    const st = await statuses();
    for (const rs of STORAGES) {
      const masters = [0, 1, 2].map((n) => `${rs}-${n}`).filter((p) => st.get(p)?.instance.role === 'master');
      expect(masters, `${rs} has one master`).toHaveLength(1);
    }
    // Routers hold no data and have no master.
    expect(st.get('router-0')?.replicasets.find((r) => r.name === 'router')?.master ?? null).toBeNull();
  });

  it('every bucket is active on exactly one storage replica set, and was bootstrapped once', async () => {
    const st = await statuses();
    const owners = new Map<number, string>();
    for (const rs of STORAGES) {
      const master = [0, 1, 2].map((n) => `${rs}-${n}`).find((p) => st.get(p)?.instance.role === 'master');
      expect(master).toBeDefined();
      const ids = (await consoleEval(stateFile, ns, master!, "local ids = {} for _, t in box.space._bucket:pairs() do if t.status == 'active' then table.insert(ids, t.id) end end return ids")) as number[];
      for (const id of ids) {
        expect(owners.get(id), `bucket ${id} active on ${owners.get(id)} and ${rs}`).toBeUndefined();
        owners.set(id, rs);
      }
      expect(ids.length).toBeGreaterThan(0);
    }
    expect(owners.size).toBe(BUCKET_COUNT);
    expect([...owners.keys()].every((id) => id >= 1 && id <= BUCKET_COUNT)).toBe(true);
    const events = (await k.in(ns).events.list()).items.filter((e) => e.reason === 'BucketsBootstrap');
    log(`BucketsBootstrap events: ${events.map((e) => `${e.involvedObject.name}: ${e.message ?? ''} (x${e.count ?? 1})`).join('; ')}`);
    expect(events).toHaveLength(1);
    expect(events[0]?.count ?? 1).toBe(1);
    // Each router sees both masters and no unknown bucket.
    const routers = await waitFor(
      'both routers see both masters and every bucket',
      async () => {
        const sh = (await statuses()).get('storage-a-0')?.sharding;
        const views = sh?.routers ?? [];
        return views.length === 2 && views.every((r) => r.unknown === 0 && r.unreachable === 0 && Object.values(r.masters).every((m) => m !== null)) ? views : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(routers.map((r) => r.pod).sort()).toEqual(ROUTERS);
  });

  it('kv_put / kv_get through either router', async () => {
    for (let i = 0; i < 40; i++) {
      const router = ROUTERS[i % 2]!;
      expect(await consoleEval(stateFile, ns, router, 'return kv_put(...)', [`key-${i}`, i])).toBe(true);
    }
    for (let i = 0; i < 40; i++) {
      const router = ROUTERS[(i + 1) % 2]!;
      expect(await consoleEval(stateFile, ns, router, 'return kv_get(...)', [`key-${i}`])).toBe(i);
    }
    expect(await consoleEval(stateFile, ns, 'router-0', "return kv_get('never-written') == nil")).toBe(true);
    // The writes landed on both storages, each replicated within its replica set (synchronous space).
    const counts: Record<string, number[]> = {};
    for (const rs of STORAGES) {
      counts[rs] = await waitFor(
        `${rs}'s three instances hold the same rows`,
        async () => {
          const c = await Promise.all([0, 1, 2].map(async (n) => (await consoleEval(stateFile, ns, `${rs}-${n}`, 'return box.space.kv:count()')) as number));
          return new Set(c).size === 1 ? c : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    }
    log(`kv rows per instance: ${JSON.stringify(counts)}`);
    expect(STORAGES.reduce((n, rs) => n + counts[rs]![0]!, 0)).toBe(40);
    for (const rs of STORAGES) expect(counts[rs]![0], `${rs} holds some of the keys`).toBeGreaterThan(0);
  });
});
