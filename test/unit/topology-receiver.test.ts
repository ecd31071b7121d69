// Every agent's end of the publication, for a sharded cluster (SPEC §4b): the sharded view reaches
// its instance when it changes — and only then, so a leader change never reloads a router.
import { describe, expect, it } from 'vitest';
import type { ShardedView } from '../../agent/instance/native-config.js';
import { TopologyReceiver } from '../../agent/member/topology.js';
import { buildClusterView, buildTarantoolTopology, encodeTopologyMessage, type TarantoolTopology } from '../../agent/wire/cluster-view.js';
import type { ObservedReplicaSet } from '../../agent/decide/model.js';
import { createLogger } from '../../common/log.js';
import { cluster, formed, instance, NOW, persisted, T } from './decide-fixtures.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const settle = () => new Promise((r) => setTimeout(r, 20));

function publication() {
  const a = formed('a', 2);
  const router: ObservedReplicaSet = { name: 'router', specReplicas: 1, updateRevision: 'rev-1', failover: 'auto', paused: false, shardingAnnotation: 'router', instances: [instance('router-0', { tarantool: { ro: false } })] };
  const observed = cluster(NOW, { ...a.rs, shardingAnnotation: 'storage' }, router);
  const state = persisted(3, { a: a.state });
  const view = buildClusterView(observed, state, {}, new Map(), T, 'a-0');
  return { view, topology: buildTarantoolTopology(observed, state, 'ns', 'demo') };
}

function receiver(shard: (v: ShardedView | null) => Promise<boolean>) {
  return new TopologyReceiver({
    deliver: async () => ({ hooks: 0, errors: [], version: 1 }),
    shard: (v) => shard(v),
    logger: createLogger({ component: 'test' }),
    replicaset: 'router',
    peers: () => [],
    knownTerm: () => 3,
    leader: () => ({ pod: 'a-0', self: false }),
    retryMs: 0,
  });
}

const push = (p: { view: ReturnType<typeof publication>['view']; topology: TarantoolTopology }) => ({ type: 'topology' as const, v: 1, term: 3, from: 'a-0', topology: encodeTopologyMessage(p) });

describe('TopologyReceiver: the sharded view', () => {
  it('hands the view over once, not again for the same view or a leader change, again when the members change', async () => {
    const got: Array<ShardedView | null> = [];
    const r = receiver(async (v) => {
      got.push(v);
      return true;
    });
    const p = publication();
    r.receive(push(p));
    await settle();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ role: 'router', storages: [{ name: 'a', instances: { 'a-0': { uri: 'a-0.ip:3301' }, 'a-1': { uri: 'a-1.ip:3301' } } }] });
    r.receive(push(p));
    const moved = { ...p.topology, replicasets: p.topology.replicasets.map((rs) => ({ ...rs, master: 'a-1' })) };
    r.receive(push({ ...p, topology: moved }));
    await settle();
    expect(got).toHaveLength(1);
    const grown = { ...p.topology, replicasets: p.topology.replicasets.map((rs) => ({ ...rs, instances: [...rs.instances, { pod: 'a-2', uuid: 'uuid-a-2', uri: 'a-2.ip:3301', master: false }] })) };
    r.receive(push({ ...p, topology: grown }));
    await settle();
    expect(got).toHaveLength(2);
    expect(Object.keys(got[1]!.storages[0]!.instances)).toEqual(['a-0', 'a-1', 'a-2']);
  });

  it('retries a view the instance could not take yet', async () => {
    let calls = 0;
    const r = receiver(async () => {
      calls += 1;
      if (calls === 1) throw new Error('the instance is being configured');
      return true;
    });
    r.receive(push(publication()));
    await settle();
    r.local({ at: 1, state: null, error: null, offline: null });
    await settle();
    expect(calls).toBe(2);
  });

  it('a plain replica set is never handed a view', async () => {
    let calls = 0;
    const r = receiver(async () => {
      calls += 1;
      return true;
    });
    const f = formed('s');
    const observed = cluster(NOW, f.rs);
    const state = persisted(1, { s: f.state });
    r.receive(push({ view: buildClusterView(observed, state, {}, new Map(), T, 's-0'), topology: buildTarantoolTopology(observed, state, 'ns', 'demo') }));
    await settle();
    expect(calls).toBe(0);
  });
});
