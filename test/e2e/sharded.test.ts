import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AgentStatus, StatusSharding } from '../../common/status.js';
import { repoRoot } from '../../demo/repo-root.js';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { ConsoleClient } from '../../agent/console/client.js';
import { condition, createNamespace, deleteNamespace, kubeClients, kubectl, podRuntime, waitFor } from '../../tools/kube.js';
import { agentStatus, consoleEval, consoleOf, holdConsole } from '../../tools/shoal-cluster.js';

// Issue 15's first "done when", on the shared local cluster with real Tarantool 3.8 and vshard
// 0.1.42: examples/sharded.yaml comes up from `kubectl apply` alone — two storage replica sets of 3,
// a router replica set of 2, one cluster label — the buckets are bootstrapped once (one Event, the
// state's record), every bucket is active on exactly one storage replica set, and kv_put / kv_get
// through either router work. Then the second: under a write load through a router, one storage
// master's Tarantool is SIGKILLed and held down; writes to its buckets resume on the new master and
// no acknowledged write is lost. Then the third: a third storage StatefulSet (3 instances) applied
// to the running cluster is listed in every instance's config, its master claims the synchronous
// queue, the rebalancer spreads the buckets evenly and every key written before still reads back.
// Waits are generous bounds; timings are printed, never asserted.

const kubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const k = kubeClients(kubeconfig);

const STORAGES = ['storage-a', 'storage-b'];
const ROUTERS = ['router-0', 'router-1'];
const PODS = [...STORAGES.flatMap((s) => [0, 1, 2].map((n) => `${s}-${n}`)), ...ROUTERS];
const BUCKET_COUNT = 3000;
const FORM_TIMEOUT_MS = 300_000;

let ns = '';
/** Every key acknowledged so far, with its value: read back after the scale-out. */
const written = new Map<string, number>();
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

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  if (ns) await deleteNamespace(k.client, ns);
});

/** The pod of a storage replica set that reports itself master (undefined: none, or more than one). */
async function masterOf(rs: string, st?: Map<string, AgentStatus>): Promise<string | undefined> {
  const all = st ?? (await statuses());
  const masters = [0, 1, 2].map((n) => `${rs}-${n}`).filter((p) => all.get(p)?.instance.role === 'master' && all.get(p)?.instance.ro === false);
  return masters.length === 1 ? masters[0] : undefined;
}

/** Which storage replica set holds each active bucket (read from the masters' _bucket). */
async function bucketOwners(storages: readonly string[] = STORAGES): Promise<Map<number, string>> {
  const owners = new Map<number, string>();
  for (const rs of storages) {
    const master = await masterOf(rs);
    if (!master) throw new Error(`${rs} has no single master`);
    const ids = (await consoleEval(stateFile, ns, master, "local ids = {} for _, t in box.space._bucket:pairs() do if t.status == 'active' then table.insert(ids, t.id) end end return ids")) as number[];
    for (const id of ids) {
      if (owners.has(id)) throw new Error(`bucket ${id} is active on ${owners.get(id)} and ${rs}`);
      owners.set(id, rs);
    }
  }
  return owners;
}

interface Put {
  key: string;
  value: number;
  bucket: number | null;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
}

/** kv_put through a router's console, one at a time, until stopped; every attempt logged. */
function routerLoad(router: string): { puts: Put[]; stop: () => Promise<void> } {
  const puts: Put[] = [];
  let stopping = false;
  const client = new ConsoleClient({ socketPath: consoleOf(stateFile, ns, router)!, timeoutMs: 15_000, connectAttemptMs: 2_000 });
  const PUT = `local key, value = ...
local b = vshard.router.bucket_id_strcrc32(key)
local ok, res = pcall(kv_put, key, value)
return {ok = ok and res == true, bucket = b, err = (not ok) and tostring(res) or box.NULL}`;
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const put: Put = { key: `load-${i}`, value: i, bucket: null, startedAt: Date.now(), endedAt: 0, ok: false };
      try {
        const r = (await client.eval(PUT, [put.key, i], { timeoutMs: 15_000, failFast: true })) as { ok: boolean; bucket: number; err: string | null };
        put.ok = r.ok;
        put.bucket = r.bucket;
        if (r.err) put.error = r.err;
      } catch (err) {
        put.error = String(err);
      }
      put.endedAt = Date.now();
      puts.push(put);
      if (!put.ok) await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    puts,
    stop: async () => {
      stopping = true;
      await done;
      await client.close();
    },
  };
}

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
    expect(st.get('router-0')?.replicasets.find((r) => r.name === 'router')?.instances.map((i) => [i.pod, i.healthy])).toEqual([
      ['router-0', true],
      ['router-1', true],
    ]);
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
      written.set(`key-${i}`, i);
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

describe('a storage master SIGKILLed (held down) under a write load through a router', () => {
  it('writes to its buckets resume on the new master; no acknowledged write is lost', async () => {
    const owners = await bucketOwners();
    const victimRs = 'storage-a';
    const old = await masterOf(victimRs);
    expect(old).toBeDefined();
    const load = routerLoad('router-0');
    cleanups.push(load.stop);
    await waitFor('the load to write to both storages', () => new Set(load.puts.filter((p) => p.ok).map((p) => owners.get(p.bucket ?? 0))).size === 2, { timeoutMs: 30_000 });
    const release = await holdConsole(consoleOf(stateFile, ns, old!)!);
    cleanups.push(release);
    const pid = podRuntime(stateFile, ns, old!)?.pids['tarantool'];
    if (!pid) throw new Error(`the Tarantool of ${old} is not running`);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    log(`SIGKILLed the Tarantool of ${old} (${victimRs}'s master), held down`);
    const promoted = await waitFor(`a new master of ${victimRs}`, async () => {
      const m = await masterOf(victimRs);
      return m !== undefined && m !== old ? m : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    log(`${promoted} reported master ${((Date.now() - killedAt) / 1000).toFixed(2)} s after the kill`);
    const resumed = await waitFor(`an acknowledged write to ${victimRs}'s buckets after the kill`, () =>
      load.puts.find((p) => p.ok && p.startedAt > killedAt && owners.get(p.bucket ?? 0) === victimRs), { timeoutMs: 60_000, intervalMs: 100 });
    const inFlight = load.puts.find((p) => p.startedAt <= killedAt && p.endedAt > killedAt);
    log(
      `first acknowledged write to ${victimRs} through the router ${((resumed.endedAt - killedAt) / 1000).toFixed(2)} s after the kill ` +
        `(the write in flight at the kill ended ${inFlight ? `${((inFlight.endedAt - killedAt) / 1000).toFixed(2)} s after it, ${inFlight.ok ? 'acknowledged' : `failed: ${(inFlight.error ?? '').slice(0, 60)}`}` : 'before it'})`,
    );
    await release();
    const settled = Date.now();
    await waitFor('writes to both storages after the old master returned', () => {
      const after = load.puts.filter((p) => p.ok && p.startedAt > settled).map((p) => owners.get(p.bucket ?? 0));
      return after.includes('storage-a') && after.includes('storage-b');
    }, { timeoutMs: 60_000 });
    await load.stop();
    const acked = load.puts.filter((p) => p.ok);
    const failed = load.puts.filter((p) => !p.ok);
    log(`${acked.length} writes acknowledged, ${failed.length} failed (${[...new Set(failed.map((p) => (p.error ?? '').slice(0, 80)))].slice(0, 3).join(' | ')})`);
    // Nothing acknowledged is lost: each reads back through the other router, from whichever master now holds it.
    const lost: string[] = [];
    for (const p of acked) {
      const v = await consoleEval(stateFile, ns, 'router-1', 'return kv_get(...)', [p.key]);
      if (v !== p.value) lost.push(`${p.key}=${JSON.stringify(v)}`);
    }
    expect(lost, 'acknowledged writes lost').toEqual([]);
    for (const p of acked) written.set(p.key, p.value);
    // The old master is back, as a replica of the new one.
    const back = await waitFor(`${old} back as a replica`, async () => ((await statuses()).get(old!)?.instance.role === 'replica' ? true : undefined), { timeoutMs: 120_000 });
    expect(back).toBe(true);
  });
});

describe('scale-out: a third storage StatefulSet joins the running cluster', () => {
  it('is listed in every config, claims its queue, gets an even share of the buckets; every key still reads', async () => {
    // storage-c: storage-b's Service and StatefulSet under another name (same ConfigMap, same role).
    const example = await readFile(path.join(repoRoot(), 'examples', 'sharded.yaml'), 'utf8');
    const docs = example.split(/^---$/m).filter((d) => /^kind: (Service|StatefulSet)$/m.test(d) && /^ {2}name: storage-b$/m.test(d));
    expect(docs).toHaveLength(2);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-scale-out-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'storage-c.yaml');
    await writeFile(file, docs.map((d) => d.replaceAll('storage-b', 'storage-c')).join('\n---\n'));
    const all = [...STORAGES, 'storage-c'];
    const appliedAt = Date.now();
    const applied = await kubectl(kubeconfig, ['apply', '-n', ns, '-f', file]);
    if (applied.code !== 0) throw new Error(`kubectl apply storage-c: ${applied.stderr}`);
    log('applied storage-c (3 instances)');

    const master = await waitFor('storage-c has a writable master that owns its synchronous queue', async () => {
      const m = await masterOf('storage-c');
      if (!m) return undefined;
      const q = (await consoleEval(stateFile, ns, m, 'return {owner = box.info.synchro.queue.owner, id = box.info.id}')) as { owner: number; id: number };
      return q.owner === q.id ? m : undefined;
    }, { timeoutMs: FORM_TIMEOUT_MS, intervalMs: 1_000 });
    log(`${master} is storage-c's master and owns its queue ${((Date.now() - appliedAt) / 1000).toFixed(1)} s after the apply`);

    // Every instance's applied config lists storage-c as a storage replica set, and both routers use its master.
    const pods = [...all.flatMap((rs) => [0, 1, 2].map((n) => `${rs}-${n}`)), ...ROUTERS];
    // The instances of storage-c listed in the config Shoal rendered for an instance (TT_CONFIG; its role: the shared ConfigMap's).
    const LISTED = `local f = assert(io.open(os.getenv('TT_CONFIG')))
local cfg = require('yaml').decode(f:read('*a'))
f:close()
local names = {}
for _, g in pairs(cfg.groups) do
  local rs = g.replicasets['storage-c']
  if rs then for name in pairs(rs.instances) do table.insert(names, name) end end
end
table.sort(names)
return names`;
    const want = JSON.stringify(['storage-c-0', 'storage-c-1', 'storage-c-2']);
    await waitFor('every instance lists storage-c in its config', async () => {
      for (const p of pods) {
        if (JSON.stringify(await consoleEval(stateFile, ns, p, LISTED)) !== want) return undefined;
      }
      return true;
    }, { timeoutMs: 120_000, intervalMs: 1_000 });
    const views = await waitFor('both routers use storage-c\'s master', async () => {
      const v = (await statuses()).get('router-0')?.sharding?.routers ?? [];
      return v.length === 2 && v.every((r) => r.masters['storage-c'] === master) ? v : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1_000 });
    log(`routers' view: ${JSON.stringify(views.map((r) => r.masters))}`);

    // The rebalancer spreads the buckets: each storage within ±10 % of an even share, nothing in flight.
    const even = BUCKET_COUNT / all.length;
    const counts = await waitFor('buckets within ±10 % of even on all three storages', async () => {
      const sh = (await statuses()).get('router-0')?.sharding;
      const b = all.map((rs) => sh?.replicasets.find((r) => r.name === rs)?.buckets);
      if (b.some((x) => !x || x.sending > 0 || x.receiving > 0)) return undefined;
      const active = b.map((x) => x?.active ?? 0);
      return active.every((n) => Math.abs(n - even) <= even * 0.1) ? active : undefined;
    }, { timeoutMs: 180_000, intervalMs: 1_000 });
    log(`buckets ${JSON.stringify(Object.fromEntries(all.map((rs, k) => [rs, counts[k]])))} ${((Date.now() - appliedAt) / 1000).toFixed(1)} s after the apply`);

    // Every bucket active on exactly one storage (bucketOwners throws on a double), all of them.
    const owners = await waitFor('every bucket active on exactly one storage', async () => {
      const o = await bucketOwners(all);
      return o.size === BUCKET_COUNT ? o : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000 });
    expect([...owners.values()].filter((rs) => rs === 'storage-c').length).toBeGreaterThan(0);

    // Every key written before reads back through a router.
    expect(written.size).toBeGreaterThan(40);
    const lost: string[] = [];
    for (const [key, value] of written) {
      const v = await consoleEval(stateFile, ns, ROUTERS[0]!, 'return kv_get(...)', [key]);
      if (v !== value) lost.push(`${key}=${JSON.stringify(v)}`);
    }
    log(`${written.size} keys written before the scale-out read back, ${lost.length} missing or wrong`);
    expect(lost, 'keys lost by the scale-out').toEqual([]);
  });
});
