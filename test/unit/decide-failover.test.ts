import { describe, expect, it } from 'vitest';
import { admissionVerdict } from '../../agent/decide/admission.js';
import { chooseCandidate, detectMasterFailure, planMasterRecovery } from '../../agent/decide/failover.js';
import type { ObservedReplicaSet, ObservedTarantool } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { cluster, formed, instance, kinds, NOW, only, patch, persisted, T, uriOf, uuidOf } from './decide-fixtures.js';

const dead = (rs: ObservedReplicaSet, pod: string, forMs = T.failoverTimeoutMs): ObservedReplicaSet =>
  patch(rs, pod, { agentReachable: false, unreachableSinceMs: NOW - forMs, tarantoolDownSinceMs: NOW - forMs, tarantool: null });

describe('detectMasterFailure', () => {
  const { rs } = formed();
  it.each([
    ['up', rs, 'up', /is up/],
    ['cut off briefly', patch(rs, 's-0', { unreachableSinceMs: NOW - 1000 }), 'suspect', /unreachable from the mesh majority for 1.0 s \(failover at 5.0 s\)/],
    ['cut off long enough', patch(rs, 's-0', { unreachableSinceMs: NOW - 5000 }), 'failed', /unreachable from the mesh majority for 5.0 s/],
    ['Tarantool silent long enough', patch(rs, 's-0', { tarantoolDownSinceMs: NOW - 5000 }), 'failed', /silent \(its Tarantool does not answer\) for 5.0 s/],
    ['not observed at all', { ...rs, instances: rs.instances.slice(1) }, 'suspect', /not in the observation/],
  ])('%s → %s', (_what, observed, verdict, reason) => {
    const f = detectMasterFailure(observed, 's-0', NOW, T);
    expect(f.verdict).toBe(verdict);
    expect(f.reason).toMatch(reason);
  });
});

describe('chooseCandidate', () => {
  const { rs, state } = formed('s', 5);
  const withClocks = (clocks: Record<string, Record<string, number>>) =>
    Object.entries(clocks).reduce((acc, [pod, vclock]) => patch(acc, pod, { tarantool: { vclock } }), rs);

  it('picks the greatest vclock, then the lowest ordinal', () => {
    const r = withClocks({ 's-1': { 1: 10 }, 's-2': { 1: 12 }, 's-3': { 1: 12 }, 's-4': { 1: 11 } });
    expect(chooseCandidate(r, state, 's-0')).toMatchObject({ pod: 's-2', reason: expect.stringMatching(/greatest vclock \{1: 12\}/) });
  });

  it('breaks incomparable clocks by their sum', () => {
    const r = withClocks({ 's-1': { 1: 10, 2: 5 }, 's-2': { 1: 12, 2: 1 }, 's-3': { 1: 1 }, 's-4': { 1: 1 } });
    expect(chooseCandidate(r, state, 's-0').pod).toBe('s-1');
  });

  it('never promotes a replica that a live member is ahead of, even if the better one may not be promoted', () => {
    const r = patch(withClocks({ 's-1': { 1: 10 }, 's-2': { 1: 20 }, 's-3': { 1: 10 }, 's-4': { 1: 10 } }), 's-2', { deleting: true });
    const c = chooseCandidate(r, state, 's-0');
    expect(c.pod).toBeNull();
    expect(c.reason).toMatch(/s-2 \{1: 20\} has rows s-1 \{1: 10\} lacks and cannot be promoted: its pod is terminating/);
  });

  it('refuses when fewer members answer than could hold every acknowledged write', () => {
    const r = dead(rs, 's-1');
    expect(chooseCandidate(r, state, 's-0').pod).toBe('s-2'); // 3 of 5 answer with the master gone: enough
    const c = chooseCandidate(dead(r, 's-2'), state, 's-0');
    expect(c).toMatchObject({ pod: null, reason: expect.stringMatching(/only 2 of 5 members answer, 3 needed/) });
  });

  it('does not count a replica cut off from the mesh majority', () => {
    const small = formed('s', 3);
    const cut = patch(small.rs, 's-1', { unreachableSinceMs: NOW - 10 });
    expect(chooseCandidate(cut, small.state, 's-0')).toMatchObject({ pod: null, reason: expect.stringMatching(/only 1 of 3 members answer/) });
  });

  it('counts a quarantined member as a voter but promotes it only when it has every row the others have', () => {
    const small = formed('s', 3);
    const q = { ...small.state, quarantined: [{ pod: 's-2', why: 'old-master' as const, sinceMs: 0, rebootstrapRequestedAtMs: null }] };
    expect(chooseCandidate(small.rs, q, 's-0').pod).toBe('s-1');
    const ahead = patch(small.rs, 's-2', { tarantool: { vclock: { 1: 12 } } });
    expect(chooseCandidate(ahead, q, 's-0').pod).toBe('s-2');
    const diverged = patch(patch(small.rs, 's-2', { tarantool: { vclock: { 1: 12 } } }), 's-1', { tarantool: { vclock: { 1: 10, 3: 1 } } });
    expect(chooseCandidate(diverged, q, 's-0')).toMatchObject({ pod: null, reason: "s-1 {1: 10, 3: 1} has rows s-2 {1: 12} lacks" });
  });
});

describe('failover through reconcile', () => {
  const { rs, state } = formed('s', 3);
  const ahead = patch(patch(rs, 's-1', { tarantool: { vclock: { 1: 9 } } }), 's-2', { tarantool: { vclock: { 1: 10 } } });

  it('persists the new master and a new term first, drops the old master from replication, then promotes', () => {
    const r = reconcile(cluster(NOW, dead(ahead, 's-0')), persisted(6, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'reconfigure:s-1', 'promote:s-2']);
    expect(r.actions.every((a) => a.term === 7)).toBe(true);
    const [persist] = only(r.actions, 'persist');
    expect(persist?.state.replicasets.s).toMatchObject({ master: 's-2', quarantined: [{ pod: 's-0', why: 'old-master' }] });
    expect(only(r.actions, 'promote')[0]).toMatchObject({ replication: [uriOf('s-1'), uriOf('s-2')], synchroQuorum: 2 });
    expect(only(r.actions, 'reconfigure')[0]?.replication).toEqual([uriOf('s-1'), uriOf('s-2')]);
    expect(r.reason).toMatch(/promoting s-2: master s-0 unreachable from the mesh majority for 5.0 s; s-2 has the greatest vclock \{1: 10\} of 2 answering members/);
  });

  it('quarantines every member the new master does not cover: down, cut off, or ahead in some component', () => {
    const five = formed('s', 5);
    const observed = patch(patch(dead(five.rs, 's-0'), 's-3', { agentReachable: false, tarantool: null }), 's-4', { tarantool: { vclock: { 1: 9, 5: 1 } } });
    const r = reconcile(cluster(NOW, observed), persisted(6, { s: five.state }), T);
    expect(r.nextPersisted.replicasets.s?.master).toBe('s-1');
    expect(r.nextPersisted.replicasets.s?.quarantined.map((q) => [q.pod, q.why])).toEqual([
      ['s-0', 'old-master'],
      ['s-3', 'missed-master-change'],
      ['s-4', 'missed-master-change'],
    ]);
    expect(only(r.actions, 'promote')[0]?.replication).toEqual([uriOf('s-1'), uriOf('s-2')]);
  });

  it('waits until the failure has lasted the failover timeout', () => {
    const r = reconcile(cluster(NOW, dead(ahead, 's-0', T.failoverTimeoutMs - 1)), persisted(6, { s: state }), T);
    expect(only(r.actions, 'promote')).toEqual([]);
    expect(r.reason).toMatch(/failover at 5.0 s/);
  });

  it('does not promote under failover: manual, and says why', () => {
    const r = reconcile(cluster(NOW, { ...dead(ahead, 's-0'), failover: 'manual' }), persisted(6, { s: state }), T);
    expect(only(r.actions, 'promote')).toEqual([]);
    expect(r.reason).toMatch(/failover is manual/);
  });

  it('fences the old master first when it is still seen writable from the coordinator', () => {
    const cutOff = patch(ahead, 's-0', { unreachableSinceMs: NOW - T.failoverTimeoutMs });
    const r = reconcile(cluster(NOW, cutOff), persisted(6, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'fence:s-0', 'reconfigure:s-1', 'promote:s-2']);
  });

  it('makes a master that fenced itself writable again once the partition has healed in time', () => {
    const fenced = patch(rs, 's-0', { tarantool: { ro: true } });
    const r = reconcile(cluster(NOW, fenced), persisted(6, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['promote:s-0']);
    expect(r.nextPersisted.term).toBe(6);
  });

  it('Tarantool 3: claims the synchronous queue for a writable master that does not own it, once a quorum follows it', () => {
    const unclaimed = patch(rs, 's-0', { tarantool: { ro: false, synchro: { owner: 0, term: 1, len: 0 } } });
    const r = reconcile(cluster(NOW, unclaimed), persisted(6, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['promote:s-0']);
    expect(r.reason).toMatch(/does not own the synchronous queue \(owner 0, term 1\): claiming it/);
    expect(r.nextPersisted.term).toBe(6);
  });

  it('Tarantool 3: waits with the claim while fewer replicas follow the master than its quorum needs', () => {
    const alone = patch(
      patch(patch(rs, 's-0', { tarantool: { ro: false, synchro: { owner: 0, term: 1, len: 0 } } }), 's-1', { tarantool: { upstreamOk: false } }),
      's-2',
      { tarantool: { upstreamOk: false } },
    );
    const r = reconcile(cluster(NOW, alone), persisted(6, { s: state }), T);
    expect(only(r.actions, 'promote')).toEqual([]);
    expect(r.reason).toMatch(/1 of the 2 instances its claim needs follow it/);
  });

  it('Tarantool 3: leaves a master that owns its queue alone', () => {
    const owner = patch(rs, 's-0', { tarantool: { ro: false, id: 1, synchro: { owner: 1, term: 2, len: 0 } } });
    const r = reconcile(cluster(NOW, owner), persisted(6, { s: state }), T);
    expect(r.actions).toEqual([]);
  });

  it('elects another master when the read-only master is behind a replica', () => {
    const behind = patch(patch(rs, 's-0', { tarantool: { ro: true, vclock: { 1: 5 } } }), 's-1', { tarantool: { vclock: { 1: 12 } } });
    const r = reconcile(cluster(NOW, behind), persisted(6, { s: state }), T);
    expect(r.nextPersisted.replicasets.s?.master).toBe('s-1');
    expect(r.nextPersisted.term).toBe(7);
  });
});

describe('the old master comes back', () => {
  const { rs, state } = formed('s', 3, 0);
  // After a failover from s-0 to s-1: s-1 is writable, s-0 is quarantined.
  const after = { ...state, master: 's-1', quarantined: [{ pod: 's-0', why: 'old-master' as const, sinceMs: NOW - 60_000, rebootstrapRequestedAtMs: null }] };
  const base = patch(patch(rs, 's-1', { tarantool: { ro: false, vclock: { 1: 10, 2: 4 } } }), 's-0', { tarantool: { ro: true } });

  it('rejoins as a replica when it has nothing the new master lacks', () => {
    const r = reconcile(cluster(NOW, base), persisted(9, { s: after }), T);
    expect(kinds(r.actions)).toContain('rejoinAsReplica:s-0');
    expect(r.nextPersisted.replicasets.s?.quarantined).toEqual([]);
  });

  it('is rebootstrapped (data kept aside) when it has writes the new master never received', () => {
    const diverged = patch(base, 's-0', { tarantool: { vclock: { 1: 13 } } });
    const r = reconcile(cluster(NOW, diverged), persisted(9, { s: after }), T);
    expect(kinds(r.actions)).toContain('rebootstrap:s-0');
    expect(only(r.actions, 'event').find((e) => e.eventReason === 'Rebootstrap')?.reason).toMatch(/writes s-1 never received \(1: 13 > 10\)/);
    for (const a of only(r.actions, 'reconfigure')) expect(a.replication).not.toContain(uriOf('s-0'));
    // Not re-sent in a tight loop.
    const again = reconcile(cluster(NOW + 1000, diverged), r.nextPersisted, T);
    expect(only(again.actions, 'rebootstrap')).toEqual([]);
    const later = reconcile(cluster(NOW + T.rebootstrapRetryMs, diverged), r.nextPersisted, T);
    expect(only(later.actions, 'rebootstrap')).toHaveLength(1);
  });

  it('is fenced first when it comes back writable', () => {
    const r = reconcile(cluster(NOW, patch(base, 's-0', { tarantool: { ro: false } })), persisted(9, { s: after }), T);
    expect(kinds(r.actions)[0]).toBe('fence:s-0');
    expect(kinds(r.actions)).not.toContain('rejoinAsReplica:s-0');
  });

  const pulling = { upstreams: [{ uuid: uuidOf('s-1'), status: 'follow', message: null }], replication: [uriOf('s-1')] };
  const stoppedPulling = { upstreams: [{ uuid: uuidOf('s-1'), status: 'stopped', message: 'Duplicate key exists in unique index' }], replication: [uriOf('s-1')] };
  it.each<[string, Partial<ObservedTarantool>, 'rebootstrap' | 'rejoin']>([
    ['ahead in its own component', { vclock: { 1: 11, 2: 4 } }, 'rebootstrap'],
    ['behind', { vclock: { 1: 9 } }, 'rejoin'],
    ['ahead only in the master’s component while it pulls from it (our view of the master is older)', { vclock: { 1: 10, 2: 6 }, ...pulling }, 'rejoin'],
    ['ahead only in the master’s component, from an agent that reports no upstreams but replication', { vclock: { 1: 10, 2: 6 }, replication: [uriOf('s-1')] }, 'rejoin'],
    ['ahead in the master’s component pulling nothing: the master lost rows', { vclock: { 1: 10, 2: 6 } }, 'rebootstrap'],
    ['ahead in the master’s component, its upstream stopped: the master lost rows', { vclock: { 1: 10, 2: 6 }, ...stoppedPulling }, 'rebootstrap'],
    ['ahead in the master’s component on disk (restarted, unconfigured)', { configured: false, status: 'unconfigured', vclock: { 1: 10, 2: 6 } }, 'rebootstrap'],
    ['ahead only in local rows (component 0)', { vclock: { 0: 50, 1: 10 } }, 'rejoin'],
  ])('verdict when %s', (_what, tarantool, verdict) => {
    const master = base.instances.find((i) => i.pod === 's-1');
    const old = instance('s-0', { tarantool });
    expect(master && admissionVerdict(old, master).verdict).toBe(verdict);
  });

  it('says when the master may have lost rows, with both vclocks', () => {
    const master = base.instances.find((i) => i.pod === 's-1');
    const old = instance('s-0', { tarantool: { configured: false, status: 'unconfigured', vclock: { 1: 10, 2: 6 } } });
    expect(master && admissionVerdict(old, master).reason).toBe(
      "s-0 has writes s-1 never received (2: 6 > 4) (s-1's own component included: it may have lost rows it once had), " +
        'vclocks s-0 {1: 10, 2: 6}, s-1 {1: 10, 2: 4}: rebootstrapping it, old data kept aside (the only record of those writes)',
    );
  });

  it('rebootstraps a pod with data that the master no longer has in _cluster (expelled earlier)', () => {
    const master = patch(base, 's-1', { tarantool: { clusterUuids: [uuidOf('s-1'), uuidOf('s-2')] } }).instances.find((i) => i.pod === 's-1');
    const old = instance('s-0', { tarantool: { vclock: { 1: 3 } } });
    expect(master && admissionVerdict(old, master)).toMatchObject({ verdict: 'rebootstrap', reason: expect.stringMatching(/not registered/) });
  });
});

describe('recovery in place: the recorded master made writable again', () => {
  // s-0 restarted and is configured read-only; the replicas say nothing unless a case says so.
  const { rs, state } = formed();
  const restarted = patch(rs, 's-0', { tarantool: { ro: true, upstreamOk: false, vclock: { 1: 12 } } });
  const silent = (r: ObservedReplicaSet, pod: string): ObservedReplicaSet => patch(r, pod, { agentReachable: false, unreachableSinceMs: NOW - 100, tarantool: null });
  const recover = (r: ObservedReplicaSet, s = state) => planMasterRecovery(r, s, NOW);

  it('with every member answering and none ahead: writable, nobody quarantined', () => {
    const step = recover(restarted);
    expect(kinds(step?.commands ?? [])).toEqual(['promote:s-0']);
    expect(step?.state.quarantined).toEqual([]);
    expect(step?.reason).toMatch(/none of 3 of 3 members is ahead of it/);
  });

  it('with an election quorum answering: writable, the silent member quarantined until compared', () => {
    const step = recover(silent(restarted, 's-2'));
    expect(kinds(step?.commands ?? [])).toEqual(['promote:s-0']);
    expect(step?.state.quarantined).toEqual([{ pod: 's-2', why: 'missed-master-change', sinceMs: NOW, rebootstrapRequestedAtMs: null }]);
    expect(step?.reason).toMatch(/s-2 quarantined until compared with it/);
    // Nobody replicates from the quarantined one meanwhile.
    const promote = step?.commands.find((c) => c.kind === 'promote');
    expect(promote && 'replication' in promote ? promote.replication : null).toEqual([uriOf('s-0'), uriOf('s-1')]);
  });

  it('with fewer than an election quorum answering: waits (an acknowledged write may be on the silent ones)', () => {
    const step = recover(silent(silent(restarted, 's-1'), 's-2'));
    expect(step?.commands).toEqual([]);
    expect(step?.reason).toMatch(/only 1 of 3 members say what their data holds, 2 needed to be sure none is ahead of it: waiting/);
  });

  it('an unconfigured member counts with the vclock its data directory holds', () => {
    const waiting = patch(silent(restarted, 's-2'), 's-1', { tarantool: { configured: false, status: 'unconfigured', vclock: { 1: 9 } } });
    const step = recover(waiting);
    expect(kinds(step?.commands ?? [])).toEqual(['promote:s-0']);
    expect(step?.state.quarantined.map((q) => q.pod)).toEqual(['s-2']);
  });

  it('a member whose data the master does not cover is quarantined, not trusted', () => {
    const step = recover(patch(restarted, 's-2', { tarantool: { vclock: { 1: 11, 3: 1 } } }));
    expect(kinds(step?.commands ?? [])).toEqual(['promote:s-0']);
    expect(step?.state.quarantined.map((q) => q.pod)).toEqual(['s-2']);
  });

  it('a member scaled away whose pod is gone is not waited for', () => {
    const scaledIn = { ...silent(silent(restarted, 's-1'), 's-2'), specReplicas: 1 };
    const gone = patch(patch(scaledIn, 's-1', { podExists: false }), 's-2', { podExists: false });
    expect(kinds(recover(gone)?.commands ?? [])).toEqual(['promote:s-0']);
  });
});
