import { describe, expect, it } from 'vitest';
import type { ObservedReplicaSet, PersistedReplicaSet, RolloutProgress } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { planRollout, rolloutPhaseEvent, type RolloutPhase } from '../../agent/decide/rollout.js';
import { cluster, formed, kinds, NOW, only, patch, persisted, T } from './decide-fixtures.js';

const { rs, state } = formed('s', 3);
/** The template changed to rev-2; `updated` pods already run it. */
const rolled = (observed: ObservedReplicaSet, ...updated: string[]): ObservedReplicaSet =>
  updated.reduce((acc, pod) => patch(acc, pod, { revision: 'rev-2', uid: `uid-${pod}-new` }), { ...observed, updateRevision: 'rev-2' });
const inFlight = (pod: string, uid = `uid-${pod}`, deletedAtMs = NOW - 1000): PersistedReplicaSet => ({
  ...state,
  rollout: { revision: 'rev-2', inFlight: { pod, uid, deletedAtMs }, oldMaster: null, startedAtMs: NOW - 5000 },
});
const plan = (observed: ObservedReplicaSet, st: PersistedReplicaSet = state, now = NOW) => planRollout(observed, st, now, T);

describe('planRollout', () => {
  it('is idle when every pod runs the update revision', () => {
    expect(plan(rs)).toMatchObject({ step: { kind: 'done' }, phase: 'idle', next: null, progress: null });
  });

  it('restarts out-of-date replicas first, highest ordinal first, recording the one in flight', () => {
    const p = plan(rolled(rs));
    expect(p).toMatchObject({ step: { kind: 'deleteReplica', pod: 's-2', uid: 'uid-s-2' }, phase: 'restarting-replicas', next: 's-2' });
    expect(p.progress).toMatchObject({ revision: 'rev-2', inFlight: { pod: 's-2', uid: 'uid-s-2', deletedAtMs: NOW } });
    expect(p.reason).toMatch(/restarting replica s-2 \(revision rev-1 → rev-2\)/);
  });

  it.each([
    ['its deletion is not visible yet and another member is down', (o: ObservedReplicaSet) => patch(o, 's-1', { podReady: false }), /deletion of s-2 has not taken effect yet/],
    ['it is terminating', (o: ObservedReplicaSet) => patch(o, 's-2', { deleting: true }), /s-2 is terminating/],
    ['it is gone', (o: ObservedReplicaSet) => patch(o, 's-2', { podExists: false, tarantool: null }), /s-2 does not exist/],
    ['it is back but catching up', (o: ObservedReplicaSet) => patch(o, 's-2', { uid: 'new', revision: 'rev-2', tarantool: { lagMs: 5000 } }), /s-2 lags 5.0 s/],
    ['it is back but not Ready', (o: ObservedReplicaSet) => patch(o, 's-2', { uid: 'new', revision: 'rev-2', podReady: false }), /s-2 is not Ready/],
  ])('waits for the restarted pod while %s', (_what, bend, why) => {
    const p = plan(bend(rolled(rs)), inFlight('s-2'));
    expect(p.step).toMatchObject({ kind: 'waitFor', pod: 's-2', why: expect.stringMatching(why) });
    expect(p.phase).toBe('restarting-replicas');
  });

  it('sends a deletion again (same uid) when it is not visible yet and nobody else is down', () => {
    const p = plan(rolled(rs), inFlight('s-2'));
    expect(p.step).toMatchObject({ kind: 'deleteReplica', pod: 's-2', uid: 'uid-s-2' });
    expect(p.progress?.inFlight?.deletedAtMs).toBe(NOW - 1000);
    expect(p.reason).toMatch(/deleting s-2 again/);
  });

  it('moves on once the restarted pod is back, ready and caught up', () => {
    const p = plan(rolled(rs, 's-2'), inFlight('s-2'));
    expect(p.step).toMatchObject({ kind: 'deleteReplica', pod: 's-1' });
  });

  it('says the rollout is blocked when a restarted pod is overdue, and restarts nothing else', () => {
    const p = plan(patch(rolled(rs), 's-2', { podExists: false, tarantool: null }), inFlight('s-2', 'uid-s-2', NOW - T.podRestartTimeoutMs - 1));
    expect(p.step).toMatchObject({ kind: 'blocked', reason: expect.stringMatching(/s-2 does not exist \(300.0 s since it was deleted\)/) });
  });

  it('does not make a degraded replica set worse: waits and says why', () => {
    const p = plan(patch(rolled(rs), 's-1', { tarantool: { upstreamOk: false } }));
    // s-1 is out of date and down itself, so restarting it costs nothing; s-2 must wait.
    expect(p.step).toMatchObject({ kind: 'deleteReplica', pod: 's-1' });
    const p2 = plan(patch(rolled(rs, 's-1'), 's-1', { tarantool: { upstreamOk: false } }));
    expect(p2.step).toMatchObject({ kind: 'waitFor', pod: 's-1', why: 's-1 is not following its master' });
    const missing = plan(patch(rolled(rs), 's-1', { podExists: false, tarantool: null }));
    expect(missing.step).toMatchObject({ kind: 'waitFor', pod: 's-1' });
  });

  it('hands the master over to the best up-to-date replica once only the master is out of date', () => {
    const observed = patch(rolled(rs, 's-1', 's-2'), 's-1', { tarantool: { vclock: { 1: 11 } } });
    const p = plan(observed);
    expect(p).toMatchObject({ step: { kind: 'switchMaster', from: 's-0', to: 's-1' }, phase: 'switching-master', next: 's-0' });
    expect(p.progress?.oldMaster).toBe('s-0');
  });

  it('restarts the old master last, once it is a replica', () => {
    const after: PersistedReplicaSet = {
      ...state,
      master: 's-1',
      rollout: { revision: 'rev-2', inFlight: null, oldMaster: 's-0', startedAtMs: NOW - 9000 },
    };
    const observed = patch(patch(rolled(rs, 's-1', 's-2'), 's-0', { tarantool: { ro: true, upstreamOk: true, lagMs: 0 } }), 's-1', { tarantool: { ro: false } });
    expect(plan(observed, after)).toMatchObject({ step: { kind: 'deleteOldMaster', pod: 's-0' }, phase: 'restarting-old-master' });
  });

  it('never deletes the master: a one-instance replica set is blocked with the reason', () => {
    const one = formed('s', 1);
    const p = plan(rolled(one.rs), one.state);
    expect(p.step).toMatchObject({ kind: 'blocked', reason: expect.stringMatching(/no up-to-date healthy replica/) });
  });

  it('stops at the next boundary when paused', () => {
    const p = plan({ ...rolled(rs), paused: true }, inFlight('s-2'));
    expect(p).toMatchObject({ step: { kind: 'paused' }, phase: 'paused', next: 's-2' });
    expect(p.reason).toMatch(/s-2's restart is still finishing/);
  });

  it('re-plans from the current state when the revision changes mid-rollout', () => {
    const newer = { ...rolled(rs, 's-2'), updateRevision: 'rev-3' };
    const p = plan(newer, inFlight('s-2'));
    expect(p.progress?.revision).toBe('rev-3');
    expect(p.step).toMatchObject({ kind: 'deleteReplica', pod: 's-2' }); // s-2 runs rev-2: out of date again
  });

  it('rolls back only the pods that differ from the update revision', () => {
    const rollback: ObservedReplicaSet = { ...patch(rs, 's-2', { revision: 'rev-2' }), updateRevision: 'rev-1' };
    const progress: RolloutProgress = { revision: 'rev-2', inFlight: null, oldMaster: null, startedAtMs: NOW - 1000 };
    const p = plan(rollback, { ...state, rollout: progress });
    expect(p.step).toMatchObject({ kind: 'deleteReplica', pod: 's-2' });
    const done = plan(patch(rollback, 's-2', { revision: 'rev-1', uid: 'x' }), { ...state, rollout: { ...progress, inFlight: { pod: 's-2', uid: 'uid-s-2', deletedAtMs: NOW - 10 } } });
    expect(done).toMatchObject({ step: { kind: 'done' }, progress: null });
  });
});

describe('rollout through reconcile', () => {
  it('deletes one replica with its uid as precondition and records it as in flight', () => {
    const r = reconcile(cluster(NOW, rolled(rs)), persisted(2, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'deletePod:s-2']);
    expect(only(r.actions, 'deletePod')[0]).toMatchObject({ uid: 'uid-s-2', term: 2 });
    expect(r.replicasets.s?.rollout).toMatchObject({ phase: 'restarting-replicas', next: 's-2' });
  });

  it('switches the master through a switchover batch', () => {
    const r = reconcile(cluster(NOW, rolled(rs, 's-1', 's-2')), persisted(2, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'fence:s-0', 'waitCatchUp:s-1', 'persist', 'promote:s-1', 'rejoinAsReplica:s-0', 'reconfigure:s-2']);
    expect(r.nextPersisted.replicasets.s?.rollout?.oldMaster).toBe('s-0');
  });

  it('never steps while something else is being fixed (a failover comes first)', () => {
    const down = patch(rolled(rs), 's-0', { agentReachable: false, tarantool: null, unreachableSinceMs: NOW - T.failoverTimeoutMs });
    const r = reconcile(cluster(NOW, down), persisted(2, { s: state }), T);
    expect(only(r.actions, 'deletePod')).toEqual([]);
    expect(only(r.actions, 'promote')).toHaveLength(1);
  });
});

describe('rollout phase Events', () => {
  const reason = 'the plan says why';
  it.each<[string, RolloutPhase | undefined, RolloutPhase, string | null]>([
    ['a coordinator that has just taken over reports from then on', undefined, 'paused', null],
    ['an unchanged phase', 'restarting-replicas', 'restarting-replicas', null],
    ['a pause, from any phase', 'idle', 'paused', 'RolloutPaused'],
    ['a pause mid-rollout', 'switching-master', 'paused', 'RolloutPaused'],
    ['the end of a rollout', 'restarting-old-master', 'idle', 'RolloutComplete'],
    ['the end of a rollout of replicas only', 'restarting-replicas', 'idle', 'RolloutComplete'],
    ['an unpause with nothing to roll', 'paused', 'idle', null],
    ['the start of a rollout (its deletions have their own Events)', 'idle', 'restarting-replicas', null],
  ])('%s', (_name, previous, phase, want) => {
    const e = rolloutPhaseEvent('s', previous, { phase, reason });
    expect(e === null ? null : e).toEqual(want === null ? null : { kind: 'event', replicaset: 's', eventType: 'Normal', eventReason: want, reason });
  });

  it('leads the round\'s batch, stamped with its term, against the phases of the previous round', () => {
    const paused = reconcile(cluster(NOW, { ...rolled(rs), paused: true }), persisted(2, { s: state }), T, { s: 'restarting-replicas' });
    expect(paused.actions[0]).toMatchObject({ kind: 'event', eventReason: 'RolloutPaused', term: 2, reason: expect.stringMatching(/rollout paused/) });
    const done = reconcile(cluster(NOW, rs), persisted(2, { s: state }), T, { s: 'restarting-old-master' });
    expect(done.actions).toEqual([expect.objectContaining({ kind: 'event', eventReason: 'RolloutComplete', reason: 'every pod of s runs revision rev-1' })]);
    expect(reconcile(cluster(NOW, rs), persisted(2, { s: state }), T).actions).toEqual([]);
  });
});
