// What the coordinator publishes about a sharded cluster (SPEC §4b): /status sharding, the roles in
// the topology, and each agent's sharded view for its native config. Pure.
import { describe, expect, it } from 'vitest';
import type { ObservedReplicaSet } from '../../agent/decide/model.js';
import type { ShardedView } from '../../agent/instance/native-config.js';
import { buildClusterView, buildTarantoolTopology, decodeTopologyMessage, encodeTopologyMessage, shardedViewFor } from '../../agent/wire/cluster-view.js';
import { cluster, formed, instance, NOW, patch, persisted, T } from './decide-fixtures.js';

const BUCKETS = { sending: 0, receiving: 0, garbage: 0, pinned: 0 };

function sharded() {
  const a = formed('a', 2);
  const b = formed('b', 1);
  let ars: ObservedReplicaSet = { ...a.rs, shardingAnnotation: 'storage' };
  ars = patch(ars, 'a-0', { tarantool: { vshard: { storage: { ...BUCKETS, active: 20, total: 20 } } } });
  ars = patch(ars, 'a-1', { tarantool: { vshard: { storage: { ...BUCKETS, active: 20, total: 20 } } } });
  const brs = patch({ ...b.rs, shardingAnnotation: 'storage' }, 'b-0', { tarantool: { vshard: { storage: { ...BUCKETS, active: 9, receiving: 1, total: 10 } } } });
  const router: ObservedReplicaSet = {
    name: 'router',
    specReplicas: 1,
    updateRevision: 'rev-1',
    failover: 'auto',
    paused: false,
    shardingAnnotation: 'router',
    instances: [instance('router-0', { tarantool: { ro: false, vshard: { router: { masters: { a: 'a-0', b: null }, unknown: 0, unreachable: 10, availableRw: 20 } } } })],
  };
  const observed = cluster(NOW, ars, brs, router);
  const state = { ...persisted(3, { a: a.state, b: b.state }), sharding: { bootstrap: { state: 'done' as const, how: 'bootstrapped' as const, by: 'router-0', atMs: 7 } } };
  return { observed, state };
}

describe('/status sharding', () => {
  it('roles, each storage\'s buckets, the bootstrap record and the routers\' view; it survives the push', () => {
    const { observed, state } = sharded();
    const view = buildClusterView(observed, state, {}, new Map(), T, 'a-0', 'buckets bootstrapped through router-0');
    expect(view.sharding).toEqual({
      replicasets: [
        { name: 'a', role: 'storage', buckets: { active: 20, sending: 0, receiving: 0, garbage: 0 } },
        { name: 'b', role: 'storage', buckets: { active: 9, sending: 0, receiving: 1, garbage: 0 } },
        { name: 'router', role: 'router', buckets: null },
      ],
      bootstrap: { state: 'done', how: 'bootstrapped', by: 'router-0', atMs: 7, reason: 'buckets bootstrapped through router-0' },
      routers: [{ pod: 'router-0', masters: { a: 'a-0', b: null }, unknown: 0, unreachable: 10 }],
    });
    const topology = buildTarantoolTopology(observed, state, 'ns', 'demo');
    expect(topology.roles).toEqual({ a: 'storage', b: 'storage', router: 'router' });
    const back = decodeTopologyMessage(encodeTopologyMessage({ view, topology }));
    expect(back.view.sharding).toEqual(view.sharding);
    expect(back.topology.roles).toEqual(topology.roles);
    expect(() => decodeTopologyMessage(encodeTopologyMessage({ view, topology: { ...topology, roles: { a: 'shard' as 'storage' } } }))).toThrow(/topology.roles/);
  });

  it('is absent for plain replica sets, with no roles in the topology', () => {
    const f = formed('s');
    const view = buildClusterView(cluster(NOW, f.rs), persisted(1, { s: f.state }), {}, new Map(), T, 's-0');
    expect(view).not.toHaveProperty('sharding');
    expect(buildTarantoolTopology(cluster(NOW, f.rs), persisted(1, { s: f.state }), 'ns', 'demo')).not.toHaveProperty('roles');
  });
});

describe('shardedViewFor: an agent\'s sharded view from the topology', () => {
  const { observed, state } = sharded();
  const topology = buildTarantoolTopology(observed, state, 'ns', 'demo');

  it('gives a router its role and every storage with its members\' addresses', () => {
    const v = shardedViewFor(topology, 'router', null);
    expect(v?.role).toBe('router');
    expect(v?.storages.map((s) => [s.name, Object.keys(s.instances)])).toEqual([
      ['a', ['a-0', 'a-1']],
      ['b', ['b-0']],
    ]);
    expect(v?.storages[0]?.instances['a-1']).toEqual({ uuid: 'uuid-a-1', uri: 'a-1.ip:3301' });
  });

  it('has no masters in it: a leader change leaves it as it was (no reload)', () => {
    const moved = { ...topology, replicasets: topology.replicasets.map((r) => (r.name === 'a' ? { ...r, master: 'a-1', instances: r.instances.map((i) => ({ ...i, master: i.pod === 'a-1' })) } : r)) };
    expect(shardedViewFor(moved, 'router', null)).toEqual(shardedViewFor(topology, 'router', null));
  });

  it('keeps the last address of a member whose pod is gone for a moment', () => {
    const known = shardedViewFor(topology, 'a', null) as ShardedView;
    const gone = { ...topology, replicasets: topology.replicasets.map((r) => (r.name === 'b' ? { ...r, instances: r.instances.map((i) => ({ ...i, uri: null })) } : r)) };
    expect(shardedViewFor(gone, 'a', known)).toEqual(known);
    expect(shardedViewFor(gone, 'a', null)?.storages.map((s) => s.name)).toEqual(['a']);
  });

  it('is null for a replica set without a role', () => {
    expect(shardedViewFor(topology, 'plain', null)).toBeNull();
  });
});

describe('/status sharding problems', () => {
  it('names a contradicting annotation; the config\'s role is shown', () => {
    const a = formed('a', 1);
    const rs: ObservedReplicaSet = { ...patch(a.rs, 'a-0', { tarantool: { shardingRoles: ['storage'] } }), shardingAnnotation: 'router' };
    const view = buildClusterView(cluster(NOW, rs), persisted(1, { a: a.state }), {}, new Map(), T, 'a-0');
    expect(view.sharding?.replicasets[0]).toMatchObject({ name: 'a', role: 'storage' });
    expect(view.sharding?.replicasets[0]?.problems?.[0]).toMatch(/contradicts sharding.roles \(storage\).*the config wins/);
    const back = decodeTopologyMessage(encodeTopologyMessage({ view, topology: buildTarantoolTopology(cluster(NOW, rs), persisted(1, { a: a.state }), 'ns', 'demo') }));
    expect(back.view.sharding).toEqual(view.sharding);
  });
});

describe('/status replicasets: routers are nobody\'s members', () => {
  it('a configured, writable router is healthy; one not configured says so', () => {
    const { observed, state } = sharded();
    const withFresh = { ...observed, replicasets: observed.replicasets.map((rs) => (rs.name === 'router' ? { ...rs, specReplicas: 2, instances: [...rs.instances, instance('router-1', { tarantool: { configured: false, status: 'unconfigured' } })] } : rs)) };
    const view = buildClusterView(withFresh, state, {}, new Map(), T, 'a-0');
    const routers = view.replicasets.find((r) => r.name === 'router');
    expect(routers?.master).toBeNull();
    expect(routers?.instances.map((i) => [i.pod, i.healthy, i.problem ?? null])).toEqual([
      ['router-0', true, null],
      ['router-1', false, 'router router-1 is not configured yet'],
    ]);
  });
});
