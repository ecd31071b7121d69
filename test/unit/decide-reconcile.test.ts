import { describe, expect, it } from 'vitest';
import { isGate } from '../../agent/decide/batch.js';
import { emptyReplicaSet, majority } from '../../agent/decide/members.js';
import type { Action, ObservedReplicaSet } from '../../agent/decide/model.js';
import { beginTerm, emptyState, reconcile } from '../../agent/decide/reconcile.js';
import { cluster, formed, fresh, instance, kinds, NOW, only, patch, persisted, T, uriOf, uuidOf, without } from './decide-fixtures.js';

const newSet = (...instances: ObservedReplicaSet['instances']): ObservedReplicaSet => ({
  name: 's',
  specReplicas: 3,
  updateRevision: 'rev-1',
  failover: 'auto',
  paused: false,
  instances,
});

describe('reconcile: bootstrap', () => {
  it('makes the lowest-ordinal live instance of a new replica set its master, under a new term', () => {
    const rs = newSet(fresh('s-1'), fresh('s-0'), fresh('s-2'));
    const r = reconcile(cluster(NOW, rs), emptyState(), T);
    expect(kinds(r.actions)).toEqual(['persist', 'bootstrapMaster:s-0']);
    expect(r.nextPersisted.term).toBe(1);
    expect(r.nextPersisted.replicasets.s?.master).toBe('s-0');
    expect(only(r.actions, 'bootstrapMaster')[0]).toMatchObject({ replication: [uriOf('s-0')], synchroQuorum: 1, term: 1 });
    expect(r.reason).toMatch(/bootstrapping replica set s with s-0/);
  });

  it('skips a terminating or unreachable pod and waits while it cannot tell whether a pod holds data', () => {
    const rs = newSet(fresh('s-0', { deleting: true }), fresh('s-1', { agentReachable: false }), fresh('s-2'));
    expect(only(reconcile(cluster(NOW, rs), emptyState(), T).actions, 'bootstrapMaster')[0]?.pod).toBe('s-2');
    const unsure = newSet(fresh('s-0', { tarantool: { vclock: null } }), fresh('s-1'));
    const r = reconcile(cluster(NOW, unsure), emptyState(), T);
    expect(r.actions).toEqual([]);
    expect(r.reason).toMatch(/cannot tell whether s-0/);
  });

  it('adopts instances that already hold data instead of bootstrapping over them', () => {
    const { rs } = formed();
    const r = reconcile(cluster(NOW, rs), emptyState(), T);
    expect(only(r.actions, 'bootstrapMaster')).toEqual([]);
    expect(r.nextPersisted.replicasets.s).toMatchObject({ master: 's-0' });
    expect(r.nextPersisted.replicasets.s?.members.map((m) => m.pod)).toEqual(['s-0', 's-1', 's-2']);
  });
});

describe('reconcile: join and synchronous quorum', () => {
  it('joins a new instance as a replica of the master and grows every member’s replication and quorum', () => {
    const { rs, state } = formed('s', 3);
    const grown = { ...rs, specReplicas: 4, instances: [...rs.instances, fresh('s-3')] };
    const r = reconcile(cluster(NOW, grown), persisted(5, { s: state }), T);
    const all = ['s-0', 's-1', 's-2', 's-3'].map(uriOf).sort();
    // The master's quorum goes up first, as a gate: the new member must not count as a voter before.
    expect(kinds(r.actions)).toEqual(['persist', 'reconfigure:s-0', 'joinReplica:s-3', 'reconfigure:s-1', 'reconfigure:s-2']);
    expect(isGate(only(r.actions, 'reconfigure')[0] as Action)).toBe(true);
    expect(isGate(only(r.actions, 'reconfigure')[1] as Action)).toBe(false);
    for (const a of [...only(r.actions, 'joinReplica'), ...only(r.actions, 'reconfigure')]) {
      expect(a).toMatchObject({ replication: all, synchroQuorum: 3, term: 5 });
    }
    expect(r.nextPersisted.term).toBe(5); // a join is not a master change
  });

  it('joins one instance per round and none without a writable master', () => {
    const { rs, state } = formed('s', 1);
    const grown = { ...rs, specReplicas: 3, instances: [...rs.instances, fresh('s-1'), fresh('s-2')] };
    expect(only(reconcile(cluster(NOW, grown), persisted(1, { s: state }), T).actions, 'joinReplica').map((a) => a.pod)).toEqual(['s-1']);
    const roMaster = patch(grown, 's-0', { tarantool: { ro: true, status: 'orphan' } });
    expect(only(reconcile(cluster(NOW, roMaster), persisted(1, { s: state }), T).actions, 'joinReplica')).toEqual([]);
  });

  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [7, 4],
  ])('quorum of %i members is %i', (n, q) => expect(majority(n)).toBe(q));

  it('quarantines a joining pod that arrives with data rather than letting anyone pull from it', () => {
    const { rs, state } = formed('s', 2);
    const old = instance('s-2', { tarantool: { configured: false, status: 'unconfigured', vclock: { 1: 3, 3: 7 }, id: null } });
    const r = reconcile(cluster(NOW, { ...rs, specReplicas: 3, instances: [...rs.instances, old] }), persisted(1, { s: state }), T);
    expect(only(r.actions, 'joinReplica')).toEqual([]);
    expect(r.nextPersisted.replicasets.s?.quarantined.map((q) => q.pod)).toEqual(['s-2']);
    for (const a of only(r.actions, 'reconfigure')) expect(a.replication).not.toContain(uriOf('s-2'));
  });

  it('reconfigures a restarted pod (new address) and drops the address of a pod that is gone', () => {
    const { rs, state } = formed('s', 3);
    const restarted = patch(rs, 's-2', { uri: 's-2.newip:3301', tarantool: { configured: false, status: 'unconfigured', vclock: { 1: 9 } } });
    const r = reconcile(cluster(NOW, restarted), persisted(1, { s: state }), T);
    const want = [uriOf('s-0'), uriOf('s-1'), 's-2.newip:3301'].sort();
    expect(only(r.actions, 'joinReplica')[0]).toMatchObject({ pod: 's-2', replication: want });
    expect(only(r.actions, 'reconfigure').map((a) => a.pod)).toEqual(['s-0', 's-1']);
    const gone = reconcile(cluster(NOW, without(rs, 's-2')), persisted(1, { s: state }), T);
    expect(only(gone.actions, 'reconfigure')[0]?.replication).toEqual([uriOf('s-0'), uriOf('s-1')]);
    expect(only(gone.actions, 'expel')).toEqual([]);
  });
});

describe('reconcile: expel', () => {
  it('expels on a real scale-down: ordinal >= spec.replicas and the pod is gone', () => {
    const { rs, state } = formed('s', 3);
    const down = { ...without(rs, 's-2'), specReplicas: 2 };
    const r = reconcile(cluster(NOW, down), persisted(3, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'reconfigure:s-0', 'reconfigure:s-1', 'expel:s-0']);
    expect(only(r.actions, 'expel')[0]).toMatchObject({ expelledPod: 's-2', expelledUuid: uuidOf('s-2') });
    expect(only(r.actions, 'reconfigure')[0]).toMatchObject({ replication: [uriOf('s-0'), uriOf('s-1')], synchroQuorum: 2 });
    expect(r.nextPersisted.replicasets.s?.expelled).toEqual([{ pod: 's-2', uuid: uuidOf('s-2') }]);
    // Once the master's _cluster no longer has it, the entry is forgotten.
    const after = patch(down, 's-0', { tarantool: { clusterUuids: [uuidOf('s-0'), uuidOf('s-1')] } });
    const r2 = reconcile(cluster(NOW, after), r.nextPersisted, T);
    expect(r2.nextPersisted.replicasets.s?.expelled).toEqual([]);
  });

  it.each([
    ['a pod that is merely restarting (ordinal < spec.replicas, gone)', (rs: ObservedReplicaSet) => without(rs, 's-2')],
    ['a scaled-away pod still terminating', (rs: ObservedReplicaSet) => ({ ...patch(rs, 's-2', { deleting: true }), specReplicas: 2 })],
    ['a scaled-away pod still running', (rs: ObservedReplicaSet) => ({ ...rs, specReplicas: 2 })],
  ])('never expels %s', (_what, bend) => {
    const { rs, state } = formed('s', 3);
    const r = reconcile(cluster(NOW, bend(rs)), persisted(1, { s: state }), T);
    expect(only(r.actions, 'expel')).toEqual([]);
    expect(r.nextPersisted.replicasets.s?.members.map((m) => m.pod)).toContain('s-2');
  });

  it('does not shrink a degraded replica set: the remaining members must be healthy', () => {
    const { rs, state } = formed('s', 3);
    const degraded = { ...without(patch(rs, 's-1', { tarantool: { upstreamOk: false } }), 's-2'), specReplicas: 2 };
    const r = reconcile(cluster(NOW, degraded), persisted(3, { s: state }), T);
    expect(only(r.actions, 'expel')).toEqual([]);
    expect(r.reason).toMatch(/not expelling s-2 yet: s-1 is not following its master/);
  });

  it('hands the master over before a scale-down removes it, and never expels it', () => {
    const { rs, state } = formed('s', 3, 2);
    const r = reconcile(cluster(NOW, { ...rs, specReplicas: 2 }), persisted(4, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'fence:s-2', 'waitCatchUp:s-0', 'persist', 'promote:s-0', 'rejoinAsReplica:s-2', 'reconfigure:s-1']);
    expect(r.nextPersisted.replicasets.s?.master).toBe('s-0');
    expect(r.nextPersisted.term).toBe(5);
    const gone = reconcile(cluster(NOW, { ...without(rs, 's-2'), specReplicas: 2 }), persisted(4, { s: state }), T);
    expect(only(gone.actions, 'expel')).toEqual([]);
    expect(gone.nextPersisted.replicasets.s?.members.map((m) => m.pod)).toContain('s-2');
  });
});

describe('reconcile: the loop as a whole', () => {
  it('does nothing for a healthy replica set, so a steady state writes nothing', () => {
    const { rs, state } = formed('s', 3);
    const r = reconcile(cluster(NOW, rs), persisted(7, { s: state }), T);
    expect(r.actions).toEqual([]);
    expect(r.nextPersisted).toEqual(persisted(7, { s: state }));
    expect(r.replicasets.s?.rollout.phase).toBe('idle');
  });

  it('takes no action on a paused replica set but still reports', () => {
    const { rs, state } = formed('s', 3);
    const broken = { ...without(patch(rs, 's-1', { tarantool: { ro: false } }), 's-2'), paused: true };
    const r = reconcile(cluster(NOW, broken), persisted(2, { s: state }), T);
    expect(r.actions).toEqual([]);
    expect(r.reason).toMatch(/paused/);
  });

  it('observes only when the coordinator itself is cut off from the mesh majority', () => {
    const { rs, state } = formed('s', 3);
    const c = { ...cluster(NOW, patch(rs, 's-1', { tarantool: { ro: false } })), mesh: { size: 5, reachableFromCoordinator: 2 } };
    const r = reconcile(c, persisted(2, { s: state }), T);
    expect(r.actions).toEqual([]);
    expect(r.reason).toMatch(/not a majority/);
  });

  it('fences a writable instance that is not the recorded master, before anything else', () => {
    const { rs, state } = formed('s', 3);
    const r = reconcile(cluster(NOW, patch(rs, 's-2', { tarantool: { ro: false } })), persisted(2, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['fence:s-2']);
    expect(r.actions.every((a) => a.term === 2)).toBe(true);
    expect(isGate(r.actions[0] as (typeof r.actions)[number])).toBe(true);
  });

  it('handles two replica sets independently under one term', () => {
    const a = formed('a', 3);
    const b = formed('b', 2);
    const bDown = patch(b.rs, 'b-0', { unreachableSinceMs: NOW - T.failoverTimeoutMs, agentReachable: false, tarantool: null });
    const r = reconcile(cluster(NOW, a.rs, bDown), persisted(3, { a: a.state, b: b.state }), T);
    expect(r.nextPersisted.replicasets.b?.master).toBe('b-1');
    expect(r.nextPersisted.replicasets.a?.master).toBe('a-0');
    expect(r.actions.every((x) => x.term === 4)).toBe(true);
  });

  it('beginTerm gives a new coordinator a term no earlier command has', () => {
    const s = beginTerm(persisted(7, { s: emptyReplicaSet() }), 's-1');
    expect(s).toMatchObject({ term: 8, coordinator: 's-1' });
  });
});
