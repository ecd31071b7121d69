import { describe, expect, it } from 'vitest';
import type { ObservedReplicaSet, PersistedReplicaSet, ReplicationRepair } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { MAX_REPAIR_REBOOTSTRAPS, planReplicationRepair } from '../../agent/decide/repair.js';
import { cluster, formed, fresh, kinds, NOW, only, patch, persisted, T, uriOf, uuidOf } from './decide-fixtures.js';

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
        /s-1 stopped: Invalid MsgPack .*, not repaired: s-1 has writes s-0 never received \(3: 4 > 0\), vclocks s-1 \{1: 10, 3: 4\}, s-0 \{1: 10\};/,
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

/** Tarantool 3.8's and 2.6's texts of ER_TUPLE_FOUND as a stopped applier reports them (reproduced). */
const DUP_38 = 'Duplicate key exists in unique index "pk" in space "t" with old tuple - [1, "replica only"] and new tuple - [1, "master"]';
const DUP_26 = "Duplicate key exists in unique index 'pk' in space 't'";

describe('a diverged replica (its applier stopped on a conflicting row)', () => {
  const { rs, state } = formed();
  // s-1 wrote a row of its own (component 2) that s-0 lacks, then s-0's row with the same key stopped it.
  const diverged = patch(stuck(rs, 's-1', 's-0', DUP_38), 's-1', { tarantool: { vclock: { 1: 10, 2: 1 } } });
  const record = 's-1 {1: 10, 2: 1}, s-0 {1: 10}: s-1 holds rows s-0 lacks (2: 1 > 0); its data kept aside in shoal-diverged-* is their only record';
  const divergedEntry = (over: Partial<ReplicationRepair> = {}) => entry({ error: DUP_38, diverged: true, step: 'restarted', stepAtMs: NOW - 1000, ...over });

  it('is reported as diverged (Warning Event, vclocks compared) and rebootstrapped, never restarted', () => {
    const r = round(diverged, state);
    expect(kinds(r.actions)).toEqual(['persist', 'rebootstrap:s-1']);
    const events = only(r.actions, 'event');
    expect(events.map((e) => [e.eventType, e.eventReason])).toEqual([
      ['Warning', 'Diverged'],
      ['Warning', 'Rebootstrap'],
    ]);
    expect(events[0]?.reason).toBe(`s-1 diverged from s-0: its applier stopped on a conflicting row (${DUP_38}); ${record}`);
    expect(only(r.actions, 'rebootstrap')[0]?.reason).toBe(
      `s-1 diverged from s-0: its applier stopped on a conflicting row (${DUP_38}); ${record}: rebootstrapping it from s-0, its old data kept aside`,
    );
    expect(r.nextPersisted.replicasets.s?.repairs).toEqual([
      { pod: 's-1', error: DUP_38, sinceMs: NOW, step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1, diverged: true },
    ]);
  });

  it('on 2.6 too, and says when the replica holds nothing the master lacks', () => {
    const r = round(stuck(rs, 's-1', 's-0', DUP_26), state);
    expect(kinds(r.actions)).toEqual(['persist', 'rebootstrap:s-1']);
    expect(only(r.actions, 'event')[0]?.reason).toMatch(/s-1 \{1: 10\}, s-0 \{1: 10\}: s-1 holds nothing s-0 lacks$/);
  });

  it("compares the master's own component too: more of it on the replica means the master lost rows", () => {
    const lost = patch(patch(stuck(rs, 's-1', 's-0', DUP_38), 's-1', { tarantool: { vclock: { 1: 12 } } }), 's-0', { tarantool: { vclock: { 1: 11 } } });
    const r = round(lost, state);
    expect(kinds(r.actions)).toEqual(['persist', 'rebootstrap:s-1']);
    expect(only(r.actions, 'event')[0]?.reason).toMatch(
      /s-1 \{1: 12\}, s-0 \{1: 11\}: s-1 holds rows s-0 lacks \(1: 12 > 11\) \(s-0's own component included: s-0 may have lost rows it once had\); its data kept aside in shoal-diverged-\* is their only record$/,
    );
  });

  it('one member at a time: a second diverged replica is reported and waits for the first', () => {
    const both = patch(stuck(diverged, 's-2', 's-0', DUP_38), 's-2', { tarantool: { vclock: { 1: 10 } } });
    const r = round(both, state);
    expect(kinds(r.actions)).toEqual(['persist', 'rebootstrap:s-1']);
    expect(only(r.actions, 'event').filter((e) => e.eventReason === 'Diverged').map((e) => e.reason.slice(0, 20))).toEqual(['s-1 diverged from s-', 's-2 diverged from s-']);
    expect(r.reason).toMatch(/s-2 diverged from s-0: .*; not rebootstrapped yet: s-1 is being rebootstrapped \(one member at a time\)/);
    const repairs = r.nextPersisted.replicasets.s?.repairs ?? [];
    expect(repairs.map((e) => [e.pod, e.step, e.diverged])).toEqual([
      ['s-1', 'rebootstrapping', true],
      ['s-2', 'restarted', true],
    ]);
    // Next round: s-1 is down moving its data aside; s-2 still waits, and is not reported again.
    const next = round(patch(both, 's-1', fresh('s-1')), r.nextPersisted.replicasets.s ?? state, NOW + 1000);
    expect(kinds(next.actions).filter((k) => k.startsWith('rebootstrap'))).toEqual([]);
    expect(only(next.actions, 'event').filter((e) => e.eventReason === 'Diverged')).toEqual([]);
    expect(next.reason).toMatch(/s-1 restarts empty to rejoin s-0; s-2 diverged .*; not rebootstrapped yet: s-1 rejoins after its rebootstrap/);
    expect(next.nextPersisted.replicasets.s?.repairs.map((e) => e.step)).toEqual(['rejoining', 'restarted']);
    // s-1 follows again and is watched, then repaired: s-2's turn.
    const done = planReplicationRepair(both.instances[1] ? patch(both, 's-1', { tarantool: rs.instances[1]?.tarantool ?? null }) : both, {
      ...state,
      repairs: [divergedEntry({ pod: 's-1', step: 'rejoining', stepAtMs: NOW - T.catchUpTimeoutMs, rebootstraps: 1 }), divergedEntry({ pod: 's-2' })],
    }, NOW, T, new Set());
    expect(done?.commands.filter((c) => c.kind === 'rebootstrap').map((c) => ('pod' in c ? c.pod : ''))).toEqual(['s-2']);
    expect(done?.reason).toMatch(/s-1 follows s-0 again: repaired \(its diverged data is kept in shoal-diverged-\*\)/);
  });

  it.each<[string, ReplicationRepair, string[], RegExp, Partial<ReplicationRepair> | null]>([
    ['reported, waiting for its turn, the slot now free: rebootstrapped, not reported again', divergedEntry(), ['persist', 'rebootstrap:s-1'], /rebootstrapping it from s-0, its old data kept aside/, { step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 }],
    ['rebootstrap requested, not yet done: waits', divergedEntry({ step: 'rebootstrapping', rebootstraps: 1 }), [], /rebootstrap of s-1 requested 1.0 s ago; waiting for it/, { step: 'rebootstrapping' }],
    [
      'a rebootstrap never seen done is asked again after rebootstrapRetryMs, not counted twice',
      divergedEntry({ step: 'rebootstrapping', stepAtMs: NOW - T.rebootstrapRetryMs, rebootstraps: 1 }),
      ['persist', 'rebootstrap:s-1'],
      /\(asked 60.0 s ago, not seen done\), its old data kept aside/,
      { step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 },
    ],
    ['diverged again after its rejoin: reported again, rebootstrapped again', divergedEntry({ step: 'rejoining', rebootstraps: 1 }), ['persist', 'rebootstrap:s-1'], /s-1 diverged from s-0/, { step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 2 }],
    [
      'too many rebootstraps: gives up, visibly',
      divergedEntry({ step: 'rejoining', rebootstraps: MAX_REPAIR_REBOOTSTRAPS }),
      ['persist'],
      /after 5 rebootstraps: giving up, an operator must look/,
      { step: 'restarted', stepAtMs: NOW },
    ],
    [
      'a stop a restart may heal that turns into a conflict: no more restarts, reported, rebootstrapped',
      entry({ step: 'restarted' }),
      ['persist', 'rebootstrap:s-1'],
      /s-1 diverged from s-0/,
      { error: DUP_38, diverged: true, step: 'rebootstrapping', stepAtMs: NOW, rebootstraps: 1 },
    ],
  ])('%s', (_what, before, expected, reason, after) => {
    const r = round(diverged, { ...state, repairs: [before] });
    expect(kinds(r.actions)).toEqual(expected);
    expect(kinds(r.actions)).not.toContain('restartReplication:s-1');
    expect(r.reason).toMatch(reason);
    const events = only(r.actions, 'event').map((e) => e.eventReason);
    expect(events.includes('Diverged')).toBe(before.diverged !== true || before.step === 'rejoining');
    expect(r.nextPersisted.replicasets.s?.repairs).toEqual(after === null ? [] : [{ ...before, ...after }]);
  });

  it.each<[string, PersistedReplicaSet, RegExp]>([
    [
      "a quarantined member's rebootstrap was just requested",
      { ...state, quarantined: [{ pod: 's-2', why: 'old-master', sinceMs: NOW - 5000, rebootstrapRequestedAtMs: NOW - 2000 }] },
      /not rebootstrapped yet: s-2's rebootstrap was requested 2.0 s ago \(one member at a time\)/,
    ],
    ['another replica is being rebootstrapped', { ...state, repairs: [entry({ pod: 's-2', step: 'rebootstrapping', rebootstraps: 1 })] }, /not rebootstrapped yet: s-2 rejoins after its rebootstrap \(one member at a time\)/],
  ])('waits while %s', (_what, st, reason) => {
    // s-2 is away, moving its data aside.
    const away = patch(diverged, 's-2', { tarantool: { alive: false, configured: false, status: 'exiting' } });
    // Everyone already replicates as the quarantine wants (no reconfiguration comes first).
    const quarantine = st.quarantined.length > 0 ? [uriOf('s-0'), uriOf('s-1')] : null;
    const r = round(quarantine ? patch(patch(away, 's-0', { tarantool: { replication: quarantine } }), 's-1', { tarantool: { replication: quarantine } }) : away, st);
    expect(kinds(r.actions).filter((k) => /^(restartReplication|rebootstrap)/.test(k))).toEqual([]);
    expect(r.reason).toMatch(reason);
    expect(only(r.actions, 'event').map((e) => e.eventReason)).toContain('Diverged');
  });

  it('never while the master is suspect, nor for the master itself', () => {
    const suspect = round(patch(diverged, 's-0', { unreachableSinceMs: NOW - 1000 }), state);
    expect(kinds(suspect.actions).filter((k) => k.startsWith('rebootstrap'))).toEqual([]);
    const master = round(stuck(rs, 's-0', 's-1', DUP_38), state);
    expect(kinds(master.actions).filter((k) => k.startsWith('rebootstrap'))).toEqual([]);
  });
});
