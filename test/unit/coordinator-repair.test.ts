import { describe, expect, it } from 'vitest';
import type { ObservedReplicaSet, PersistedReplicaSet, ReplicationRepair } from '../../agent/coordinator/model.js';
import { reconcile } from '../../agent/coordinator/reconcile.js';
import { MAX_REPAIR_REBOOTSTRAPS, planReplicationRepair } from '../../agent/coordinator/repair.js';
import { cluster, formed, fresh, kinds, NOW, only, patch, persisted, T, uuidOf } from './coordinator-fixtures.js';

/** An applier error a replication restart may heal. */
const ERROR = 'Invalid MsgPack - packet body';
/** Tarantool 2.6's sync mismatch: a restart gets the same CONFIRM again, only a rebootstrap heals it. */
const MISMATCH = 'CONFIRM message arrived for an unknown master id 1, expected 0';

/** `pod`'s upstream from `from` stopped with `message` (the others follow). */
function stuck(rs: ObservedReplicaSet, pod: string, from = 's-0', message = ERROR): ObservedReplicaSet {
  const t = rs.instances.find((i) => i.pod === pod)?.tarantool;
  const upstreams = (t?.upstreams ?? []).map((u) => (u.uuid === uuidOf(from) ? { ...u, status: 'stopped', message } : u));
  return patch(rs, pod, { tarantool: { upstreams, upstreamOk: false, lagMs: null } });
}

const entry = (over: Partial<ReplicationRepair> = {}): ReplicationRepair => ({
  pod: 's-1',
  error: ERROR,
  sinceMs: NOW - 10_000,
  step: 'restarted',
  stepAtMs: NOW - 1000,
  rebootstraps: 0,
  ...over,
});

const round = (rs: ObservedReplicaSet, state: PersistedReplicaSet, now = NOW) => reconcile(cluster(now, rs), persisted(3, { s: state }), T);

describe('replication repair', () => {
  const { rs, state } = formed();

  it('leaves a healthy replica set alone', () => {
    expect(planReplicationRepair(rs, state, NOW, T, new Set())).toBeNull();
  });

  it('restarts the replication of a replica whose upstream from the master stopped, and says why', () => {
    const r = round(stuck(rs, 's-1'), state);
    expect(kinds(r.actions)).toEqual(['persist', 'restartReplication:s-1']);
    const [restart] = only(r.actions, 'restartReplication');
    expect(restart).toMatchObject({ replication: ['s-0.ip:3301', 's-1.ip:3301', 's-2.ip:3301'], synchroQuorum: 2 });
    expect(restart?.reason).toBe(`s-1 stopped: ${ERROR} (upstream from s-0): restarting its replication`);
    expect(only(r.actions, 'event')[0]).toMatchObject({ eventType: 'Warning', eventReason: 'ReplicationRestart' });
    expect(r.nextPersisted.replicasets.s?.repairs).toEqual([{ pod: 's-1', error: ERROR, sinceMs: NOW, step: 'restarted', stepAtMs: NOW, rebootstraps: 0 }]);
  });

  it('rebootstraps at once a replica stopped by the sync mismatch (a restart does not heal it), and gives up after the bound', () => {
    const r = round(stuck(rs, 's-1', 's-0', MISMATCH), state);
    expect(kinds(r.actions)).toEqual(['persist', 'rebootstrap:s-1']);
    expect(only(r.actions, 'rebootstrap')[0]?.reason).toBe(
      `s-1 stopped: ${MISMATCH} (an error a replication restart does not heal): rebootstrapping it from s-0, old data kept aside`,
    );
    expect(r.nextPersisted.replicasets.s?.repairs).toEqual([{ pod: 's-1', error: MISMATCH, sinceMs: NOW, step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 }]);
    // Stopped the same way again after its rejoin: rebootstrapped again, counted, until the bound.
    const again = planReplicationRepair(stuck(rs, 's-1', 's-0', MISMATCH), { ...state, repairs: [entry({ step: 'rejoining', rebootstraps: 1 })] }, NOW, T, new Set());
    expect(again?.state.repairs).toMatchObject([{ step: 'rebootstrapping', rebootstraps: 2, error: MISMATCH }]);
    const spent = planReplicationRepair(
      stuck(rs, 's-1', 's-0', MISMATCH),
      { ...state, repairs: [entry({ step: 'rejoining', rebootstraps: MAX_REPAIR_REBOOTSTRAPS })] },
      NOW,
      T,
      new Set(),
    );
    expect(spent?.commands).toEqual([]);
    expect(spent?.reason).toMatch(/giving up, an operator must look/);
  });

  it.each<[string, ReplicationRepair, ObservedReplicaSet, string[], RegExp, Partial<ReplicationRepair> | null]>([
    ['still stopped soon after the restart: waits', entry(), stuck(rs, 's-1'), [], /replication restarted 1.0 s ago, rebootstrap at 5.0 s/, { step: 'restarted' }],
    [
      'still stopped after catchUpTimeoutMs: rebootstraps it with the same identity',
      entry({ stepAtMs: NOW - T.catchUpTimeoutMs }),
      stuck(rs, 's-1'),
      ['persist', 'rebootstrap:s-1'],
      /s-1 stopped: Invalid MsgPack .* 5.0 s after its replication was restarted: rebootstrapping it from s-0, old data kept aside/,
      { step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 },
    ],
    [
      'rebootstrap requested, not yet done: waits',
      entry({ step: 'rebootstrapping', rebootstraps: 1 }),
      stuck(rs, 's-1'),
      [],
      /rebootstrap of s-1 requested 1.0 s ago; waiting for it/,
      { step: 'rebootstrapping' },
    ],
    [
      'a rebootstrap that never happened is asked again after rebootstrapRetryMs, not counted twice',
      entry({ step: 'rebootstrapping', stepAtMs: NOW - T.rebootstrapRetryMs, rebootstraps: 1 }),
      stuck(rs, 's-1'),
      ['persist', 'rebootstrap:s-1'],
      /did not happen/,
      { step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 },
    ],
    [
      'the rebootstrapped replica restarts empty: watched while it rejoins (configured by planConfigure)',
      entry({ step: 'rebootstrapping', rebootstraps: 1 }),
      patch(rs, 's-1', fresh('s-1')),
      ['persist', 'joinReplica:s-1'],
      /s-1 restarts empty to rejoin s-0/,
      { step: 'rejoining', stepAtMs: NOW, rebootstraps: 1 },
    ],
    [
      'stopped again after the rejoin: the cycle starts over with a restart',
      entry({ step: 'rejoining', rebootstraps: 1 }),
      stuck(rs, 's-1'),
      ['persist', 'restartReplication:s-1'],
      /restarting its replication/,
      { step: 'restarted', stepAtMs: NOW, rebootstraps: 1, sinceMs: NOW - 10_000 },
    ],
    ['follows again, briefly: watched', entry({ step: 'rejoining', rebootstraps: 1 }), rs, [], /s-1 follows s-0 again; watching it for 5.0 s/, { step: 'rejoining' }],
    ['follows again for catchUpTimeoutMs: repaired', entry({ stepAtMs: NOW - T.catchUpTimeoutMs }), rs, ['persist'], /s-1 follows s-0 again: repaired/, null],
    [
      'too many rebootstraps: gives up, visibly',
      entry({ stepAtMs: NOW - T.catchUpTimeoutMs, rebootstraps: MAX_REPAIR_REBOOTSTRAPS }),
      stuck(rs, 's-1'),
      [],
      /after 5 rebootstraps: giving up, an operator must look/,
      { rebootstraps: MAX_REPAIR_REBOOTSTRAPS },
    ],
  ])('%s', (_what, before, observed, expected, reason, after) => {
    const r = round(observed, { ...state, repairs: [before] });
    expect(kinds(r.actions)).toEqual(expected);
    expect(r.reason).toMatch(reason);
    const repairs = r.nextPersisted.replicasets.s?.repairs ?? [];
    if (after === null) expect(repairs).toEqual([]);
    else expect(repairs).toEqual([{ ...before, ...after }]);
  });

  describe('never', () => {
    const switching = { ...state, switchover: { from: 's-0', to: 's-2', startedAtMs: NOW - 100, reason: 'test' } };
    it.each<[string, ObservedReplicaSet, PersistedReplicaSet, RegExp | null]>([
      ['the master (its upstream from a replica stopped)', stuck(rs, 's-0', 's-1'), state, null],
      ['for an upstream from another replica', stuck(rs, 's-1', 's-2'), state, null],
      ['during a switchover (it ends the round)', stuck(rs, 's-1'), switching, null],
      ['while the master is suspect (a failover may come)', patch(stuck(rs, 's-1'), 's-0', { unreachableSinceMs: NOW - 1000 }), state, /not repairing the replication of s-1: master s-0 unreachable/],
      ['without a writable master', patch(stuck(rs, 's-1'), 's-0', { tarantool: { ro: true } }), state, /not repairing|making it writable/],
      [
        'a replica holding writes the master lacks',
        patch(stuck(rs, 's-1'), 's-1', { tarantool: { vclock: { 1: 10, 3: 4 } } }),
        state,
        /s-1 stopped: Invalid MsgPack .*, not repaired: s-1 has writes s-0 never received \(3: 4 > 0\);/,
      ],
      ['a quarantined member (admission decides)', stuck(rs, 's-1'), { ...state, quarantined: [{ pod: 's-1', why: 'old-master', sinceMs: NOW, rebootstrapRequestedAtMs: null }] }, /s-1 .* rejoining it as a replica/],
      ['a terminating pod', patch(stuck(rs, 's-1'), 's-1', { deleting: true }), state, /s-1 stopped: Invalid MsgPack .*; another change to it goes first/],
    ])('%s', (_what, observed, st, reason) => {
      const r = round(observed, st);
      expect(kinds(r.actions).filter((k) => /^(restartReplication|rebootstrap)/.test(k))).toEqual([]);
      if (reason === null) expect(r.reason).not.toMatch(/stopped|repair/);
      else expect(r.reason).toMatch(reason);
    });

    it('while a switchover is recorded, even when asked alone', () => {
      const step = planReplicationRepair(stuck(rs, 's-1'), switching, NOW, T, new Set());
      expect(step?.commands).toEqual([]);
      expect(step?.reason).toBe('not repairing the replication of s-1: a switchover from s-0 to s-2 is in progress');
    });

    it('acts while another command for the same replica is in the round', () => {
      const step = planReplicationRepair(stuck(rs, 's-1'), state, NOW, T, new Set(['s-1']));
      expect(step?.commands).toEqual([]);
      expect(step?.reason).toMatch(/another change to it goes first/);
    });
  });
});
