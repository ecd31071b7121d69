import { describe, expect, it } from 'vitest';
import { compareWithMaster, describeComparison, mayBeReceiving, upstreamCondition, type UpstreamCondition } from '../../agent/decide/divergence.js';
import type { PlannedAction, ObservedTarantool, PersistedReplicaSet, Vclock } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { rebootstrapBlocker } from '../../agent/decide/rebootstraps.js';
import { cluster, formed, instance, kinds, NOW, only, patch, persisted, T, uriOf } from './decide-fixtures.js';

describe('an upstream, classified', () => {
  it.each<[string, string, string | null, UpstreamCondition]>([
    ['following', 'follow', null, 'running'],
    ['disconnected (heals by itself)', 'disconnected', 'Connection refused', 'running'],
    ['syncing', 'sync', null, 'running'],
    ['3.8 duplicate key', 'stopped', 'Duplicate key exists in unique index "pk" in space "t" with old tuple - [1, "replica only"] and new tuple - [1, "master"]', 'diverged'],
    ['2.6 duplicate key', 'stopped', "Duplicate key exists in unique index 'pk' in space 't'", 'diverged'],
    ['3.8 duplicate key in _space (a space created on both sides)', 'stopped', 'Duplicate key exists in unique index "primary" in space "_space" with old tuple - [513] and new tuple - [513]', 'diverged'],
    ['a space the replica lacks', 'stopped', "Space '512' does not exist", 'diverged'],
    ['2.6 field type conflict', 'stopped', 'Tuple field 2 type does not match one required by operation: expected string', 'diverged'],
    ['3.8 field type conflict', 'stopped', 'Tuple field 2 (v) type does not match one required by operation: expected string, got unsigned', 'diverged'],
    ['3.x split brain', 'stopped', 'Split-Brain discovered: got a request from a foreign synchro queue owner', 'diverged'],
    ['a stop a restart may heal', 'stopped', 'Invalid MsgPack - packet body', 'stopped'],
    ["2.6's sync mismatch (rebootstrapped, but no data conflict)", 'stopped', 'CONFIRM message arrived for an unknown master id 1, expected 0', 'stopped'],
    ['stopped without a message', 'stopped', null, 'stopped'],
    ['a conflict text on a running upstream (an old message)', 'follow', "Duplicate key exists in unique index 'pk' in space 't'", 'running'],
  ])('%s', (_what, status, message, condition) => {
    expect(upstreamCondition({ uuid: 'u', status, message })).toBe(condition);
  });
});

describe('what a replica holds that the master lacks', () => {
  it.each<[string, Vclock, Vclock, number, Array<[number, number, number]>, boolean]>([
    ['nothing (behind)', { 1: 9 }, { 1: 10 }, 1, [], false],
    ['nothing (equal, local rows ignored)', { 0: 7, 1: 10 }, { 1: 10 }, 1, [], false],
    ['its own rows', { 1: 10, 2: 1 }, { 1: 10 }, 1, [[2, 1, 0]], false],
    ["more of the master's own component: the master lost rows", { 1: 12 }, { 1: 11 }, 1, [[1, 12, 11]], true],
    ['both', { 1: 12, 3: 2 }, { 1: 11, 3: 1 }, 1, [[1, 12, 11], [3, 2, 1]], true],
  ])('%s', (_what, mine, theirs, masterId, lacking, masterOwn) => {
    const c = compareWithMaster(mine, theirs, masterId);
    expect(c.lacking.map((l) => [l.id, l.mine, l.theirs])).toEqual(lacking);
    expect(c.masterOwn).toBe(masterOwn);
  });

  it('says so with both vclocks', () => {
    const c = compareWithMaster({ 1: 12, 2: 1 }, { 1: 11 }, 1);
    expect(describeComparison('s-1', { 1: 12, 2: 1 }, 's-0', { 1: 11 }, c)).toBe(
      "s-1 {1: 12, 2: 1}, s-0 {1: 11}: s-1 holds rows s-0 lacks (1: 12 > 11, 2: 1 > 0) (s-0's own component included: s-0 may have lost rows it once had); " +
        'its data kept aside in shoal-diverged-* is their only record',
    );
  });

  it.each<[string, Partial<ObservedTarantool>, boolean]>([
    ['unconfigured: its files do not change', { configured: false, upstreams: [], replication: [] }, false],
    ['configured, replicating from nobody', { upstreams: [], replication: [] }, false],
    ['every upstream stopped', { upstreams: [{ uuid: 'a', status: 'stopped', message: 'x' }], replication: ['a'] }, false],
    ['an upstream follows', { upstreams: [{ uuid: 'a', status: 'stopped', message: 'x' }, { uuid: 'b', status: 'follow', message: null }], replication: ['a', 'b'] }, true],
    ['an upstream is disconnected (it reconnects)', { upstreams: [{ uuid: 'a', status: 'disconnected', message: null }], replication: ['a'] }, true],
    ['upstreams not reported, replication configured', { upstreams: [], replication: ['a'] }, true],
  ])('may still be receiving rows: %s', (_what, t, receiving) => {
    const tarantool = instance('s-1', { tarantool: t }).tarantool;
    expect(tarantool && mayBeReceiving(tarantool)).toBe(receiving);
  });
});

describe('one rebootstrap per replica set at a time', () => {
  const { state } = formed();
  const rebootstrapOf = (pod: string): PlannedAction => ({ kind: 'rebootstrap', replicaset: 's', pod, reason: 'test', replication: [], synchroQuorum: 2 });
  const repair = (pod: string, step: 'restarted' | 'rebootstrapping' | 'rejoining') => ({ pod, error: 'e', sinceMs: NOW - 10_000, step, stepAtMs: NOW - 1000, rebootstraps: 1 });
  const quarantined = (pod: string, requestedAgoMs: number | null) => ({
    pod,
    why: 'old-master' as const,
    sinceMs: NOW - 100_000,
    rebootstrapRequestedAtMs: requestedAgoMs === null ? null : NOW - requestedAgoMs,
  });

  it.each<[string, Partial<PersistedReplicaSet>, PlannedAction[], string | null]>([
    ['nothing under way', {}, [], null],
    ['its own rebootstrap (asked again)', { repairs: [repair('s-1', 'rebootstrapping')] }, [rebootstrapOf('s-1')], null],
    ['another planned in this round', {}, [rebootstrapOf('s-2')], 's-2 is being rebootstrapped (one member at a time)'],
    ['another repair rebootstrapping', { repairs: [repair('s-2', 'rebootstrapping')] }, [], 's-2 is being rebootstrapped (one member at a time)'],
    ['another repair rejoining after its rebootstrap', { repairs: [repair('s-2', 'rejoining')] }, [], 's-2 rejoins after its rebootstrap (one member at a time)'],
    ['another repair only restarted its replication', { repairs: [repair('s-2', 'restarted')] }, [], null],
    ["a quarantined member's rebootstrap requested just now", { quarantined: [quarantined('s-2', 2000)] }, [], "s-2's rebootstrap was requested 2.0 s ago (one member at a time)"],
    ['a quarantined rebootstrap never seen done (rebootstrapRetryMs ago)', { quarantined: [quarantined('s-2', T.rebootstrapRetryMs)] }, [], null],
    ['a quarantined member not rebootstrapped', { quarantined: [quarantined('s-2', null)] }, [], null],
  ])('%s', (_what, over, planned, blocker) => {
    expect(rebootstrapBlocker({ ...state, ...over }, 's-1', planned, NOW, T)).toBe(blocker);
  });

  it('admission rebootstraps one quarantined member per turn, the next once the first is back', () => {
    const { rs } = formed();
    // After a failover to s-0 both others hold writes s-0 lacks, and are quarantined.
    const ahead = patch(patch(rs, 's-1', { tarantool: { vclock: { 1: 10, 2: 3 } } }), 's-2', { tarantool: { vclock: { 1: 10, 3: 2 } } });
    const replication = [uriOf('s-0')];
    const observed = ['s-0', 's-1', 's-2'].reduce((acc, pod) => patch(acc, pod, { tarantool: { replication } }), ahead);
    const st: PersistedReplicaSet = { ...state, quarantined: [quarantined('s-1', null), quarantined('s-2', null)] };
    const r = reconcile(cluster(NOW, observed), persisted(4, { s: st }), T);
    expect(kinds(r.actions).filter((k) => k.startsWith('rebootstrap'))).toEqual(['rebootstrap:s-1']);
    expect(r.reason).toMatch(/s-2 has writes s-0 never received \(3: 2 > 0\).*; to be rebootstrapped: s-1 is being rebootstrapped \(one member at a time\)/);
    expect(only(r.actions, 'event').filter((e) => e.eventReason === 'Rebootstrap')).toHaveLength(1);
    // s-1 back empty and admitted: s-2's turn.
    const back = patch(observed, 's-1', { tarantool: { vclock: {}, configured: false, status: 'unconfigured', upstreams: [] } });
    const next = reconcile(cluster(NOW + 2000, back), r.nextPersisted, T);
    expect(kinds(next.actions)).toContain('joinReplica:s-1');
    expect(kinds(next.actions)).toContain('rebootstrap:s-2');
  });
});
