// The shell's small pure parts: self-fencing over time, the follower's ticking, the local snapshot
// mappings, the published view and topology, the persisted-state decoder, and /switchover's token and
// body checks.
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { deriveTimings, fenceDeadline } from '../../agent/decide/timings.js';
import { parseSwitchoverBody } from '../../agent/http/control-routes.js';
import { bearerToken } from '../../common/token.js';
import { followSymptoms } from '../../agent/member/symptom-follower.js';
import { toTarantoolReport, toWireInstance, type LocalSnapshot } from '../../agent/member/probe.js';
import { SelfFencer } from '../../agent/member/self-fence.js';
import { decodePersistedState } from '../../agent/wire/state-codec.js';
import { electionTimings } from '../../agent/lease/timing.js';
import { buildClusterView, buildTarantoolTopology, decodeTopologyMessage, encodeTopologyMessage } from '../../agent/wire/cluster-view.js';
import type { InstanceState } from '../../agent/instance/state.js';
import { parseMessage } from '../../agent/wire/mesh-protocol.js';
import { cluster, formed, patch, persisted, T } from './decide-fixtures.js';

function state(over: Partial<InstanceState> = {}): InstanceState {
  return { phase: 'configured', configured: true, pid: 42, attempt: 1, notes: {}, ro: false, status: 'running', vclock: { '1': 7 }, replication: [], role: 'master', id: 1, lag: 0, synchroQuorum: 2, replicationUris: ['a:1', 'b:1'], clusterUuids: [], ...over };
}
const snap = (st: InstanceState | null, offline: Record<string, number> | null = null): LocalSnapshot => ({ at: 1, state: st, error: st ? null : 'gone', offline });

describe('self-fencing', () => {
  // `mutual` defaults to `sees`: the peers heard also hear this agent.
  function fencer(sees: string[], master = true, view: { mutual?: string[]; known?: boolean } = {}) {
    let now = 0;
    const fenced: string[] = [];
    let fences = 0;
    let renewals = 0;
    const f = new SelfFencer({
      reachability: () => ({ sees, mutual: view.mutual ?? sees, peers: 4, known: view.known ?? true }),
      local: () => snap(state({ ro: !master })),
      fence: async () => {
        fences++;
      },
      renewLease: async () => {
        renewals++;
      },
      timings: T,
      logger: pino({ level: 'silent' }),
      onFenced: (r) => fenced.push(r),
      clock: () => now,
    });
    return { f, advance: (ms: number) => (now += ms), fenced, count: () => fences, renewals: () => renewals };
  }
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('fences a master cut off from the majority exactly at the deadline, not before', async () => {
    const { f, advance, fenced, count } = fencer(['b']); // 2 of 5 agents
    const deadline = fenceDeadline(T);
    expect(deadline).toBeLessThan(T.failoverTimeoutMs);
    expect(f.tick()).toBe(false);
    advance(deadline - 1);
    expect(f.tick()).toBe(false);
    advance(1);
    expect(f.tick()).toBe(true);
    await settle();
    expect(count()).toBe(1);
    expect(fenced[0]).toContain('going read-only');
  });

  it('fences a master that hears a majority which no longer hears it (one-way partition)', async () => {
    const { f, advance, count } = fencer(['b', 'c', 'd', 'e'], true, { mutual: ['b'] });
    f.tick();
    advance(fenceDeadline(T));
    expect(f.tick()).toBe(true);
    await settle();
    expect(count()).toBe(1);
  });

  it('fences a master whose agent has not listed its peers yet, even if it hears some', () => {
    const { f, advance } = fencer(['b', 'c', 'd'], true, { known: false });
    f.tick();
    advance(fenceDeadline(T));
    expect(f.tick()).toBe(true);
  });

  it('renews the watchdog lease once per heartbeat interval while it holds a mutual majority, never without', async () => {
    const ok = fencer(['b', 'c'], false);
    for (let i = 0; i < 10; i++) {
      ok.f.tick();
      await settle();
      ok.advance(T.heartbeatIntervalMs / 2);
    }
    expect(ok.renewals()).toBe(5);
    for (const view of [{ mutual: ['b'] }, { known: false }]) {
      const cut = fencer(['b', 'c', 'd'], true, view);
      for (let i = 0; i < 10; i++) {
        cut.f.tick();
        await settle();
        cut.advance(T.heartbeatIntervalMs);
      }
      expect(cut.renewals()).toBe(0);
    }
  });

  it.each([
    ['a master with a majority', ['b', 'c'], true],
    ['a cut-off replica', ['b'], false],
  ])('never fences %s', (_name, sees, master) => {
    const { f, advance } = fencer(sees, master);
    f.tick();
    advance(10 * T.failoverTimeoutMs);
    expect(f.tick()).toBe(false);
  });
});

const UUID_SELF = '00000000-0000-4000-8000-000000000002';
const UUID_MASTER = '00000000-0000-4000-8000-000000000001';
const STOPPED: InstanceState['replication'] = [
  { id: 1, uuid: UUID_MASTER, upstream: { status: 'stopped', message: 'CONFIRM message arrived for an unknown master id 1, expected 0' } },
  { id: 2, uuid: UUID_SELF },
];

describe('follower ticking', () => {
  it('observes every interval while not coordinating, and never after the stop', () => {
    vi.useFakeTimers();
    try {
      let coordinating = false;
      const ticks: number[] = [];
      const stop = new AbortController();
      followSymptoms({ observe: (_m, now) => ticks.push(now), coordinating: () => coordinating, members: () => ({ replicasets: {} }), intervalMs: 300 }, stop.signal);
      vi.advanceTimersByTime(900);
      expect(ticks).toHaveLength(3);
      coordinating = true; // the rounds observe now
      vi.advanceTimersByTime(900);
      expect(ticks).toHaveLength(3);
      coordinating = false;
      stop.abort();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('local snapshot mappings', () => {
  it.each([
    ['a master', snap(state()), { configured: true, alive: true, ro: false, status: 'running', upstreamOk: false, lagMs: 0, replication: ['a:1', 'b:1'] }],
    ['a following replica', snap(state({ ro: true, role: 'replica', lag: 0.25 })), { ro: true, upstreamOk: true, lagMs: 250 }],
    ['a replica not following', snap(state({ ro: true, role: 'replica', lag: undefined })), { upstreamOk: false, lagMs: null }],
    ['an unconfigured instance with its offline vclock', snap(state({ phase: 'waiting', configured: false }), { '1': 3 }), { configured: false, alive: true, status: 'unconfigured', vclock: { '1': 3 } }],
    ['an unconfigured instance not read yet', snap(state({ phase: 'waiting', configured: false })), { vclock: null, status: 'unconfigured' }],
    ['a configuring instance', snap(state({ phase: 'configuring', configured: false })), { alive: true, status: 'configuring', vclock: null }],
    ['a silent console', snap(null), { alive: false, configured: false, status: 'unreachable', vclock: null }],
    [
      'a replica whose upstream stopped with an error (its own entry left out)',
      snap(state({ ro: true, role: 'replica', lag: undefined, uuid: UUID_SELF, replication: STOPPED })),
      { upstreamOk: false, upstreams: [{ uuid: UUID_MASTER, status: 'stopped', message: 'CONFIRM message arrived for an unknown master id 1, expected 0' }] },
    ],
  ])('%s', (_name, s, want) => {
    expect(toTarantoolReport(s)).toMatchObject(want);
  });

  it('builds heartbeats the mesh protocol accepts', () => {
    for (const s of [snap(state()), snap(null), snap(state({ phase: 'waiting', configured: false }), {}), snap(state({ ro: true, uuid: UUID_SELF, replication: STOPPED }))]) {
      const hb = { type: 'heartbeat', v: 1, pod: 's-0', term: 1, sentAt: 1, agentVersion: 'x', sees: [], instance: toWireInstance(s) };
      const parsed = parseMessage(JSON.stringify(hb));
      expect(parsed.ok).toBe(true);
      if (parsed.ok && parsed.msg.type === 'heartbeat') expect(parsed.msg.instance.tarantool).toEqual(toTarantoolReport(s));
    }
  });
});

describe('published view and topology', () => {
  const { rs, state: st } = formed('s', 3, 1);
  const observed = cluster(1000, rs);
  const p = persisted(7, { s: st });

  it('says who is master, and round-trips through the mesh', () => {
    const view = buildClusterView(observed, p, { s: { reason: 'ok', rollout: { phase: 'idle', next: null, reason: 'done' } } }, new Map([['s-1', 'master' as const]]), T, 's-0');
    const topology = buildTarantoolTopology(observed, p, 'ns', 'c');
    expect(view).toMatchObject({ term: 7, coordinator: 's-0', replicasets: [{ name: 's', master: 's-1' }], rollouts: [{ replicaset: 's', phase: 'idle' }] });
    expect(view.replicasets[0]?.instances.map((i) => [i.pod, i.role, i.healthy])).toEqual([
      ['s-0', 'replica', true],
      ['s-1', 'master', true],
      ['s-2', 'replica', true],
    ]);
    expect(topology.replicasets[0]).toMatchObject({ name: 's', master: 's-1', instances: [{ pod: 's-0', master: false }, { pod: 's-1', master: true, uri: 's-1.ip:3301' }, { pod: 's-2' }] });
    expect(decodeTopologyMessage(encodeTopologyMessage({ view, topology }))).toEqual({ view, topology });
    expect(() => decodeTopologyMessage({ view: { term: -1 }, topology: {} })).toThrow('invalid topology push');
  });

  it("names an unhealthy member's problem, its upstream's error included", () => {
    const message = 'CONFIRM message arrived for an unknown master id 2, expected 0';
    const stuck = patch(rs, 's-2', { tarantool: { upstreamOk: false, lagMs: null, upstreams: [{ uuid: 'uuid-s-1', status: 'stopped', message }] } });
    const view = buildClusterView(cluster(1000, stuck), p, {}, new Map(), T, 's-0');
    expect(view.replicasets[0]?.instances[2]).toEqual({ pod: 's-2', role: 'replica', healthy: false, lag: null, problem: `s-2 is not following its master (upstream stopped: ${message})` });
    expect(view.replicasets[0]?.instances[0]).not.toHaveProperty('problem');
    const topology = buildTarantoolTopology(cluster(1000, stuck), p, 'ns', 'c');
    expect(decodeTopologyMessage(encodeTopologyMessage({ view, topology })).view).toEqual(view);
  });

  it('marks a diverged member, with its repair, and round-trips it', () => {
    const message = 'Duplicate key exists in unique index "pk" in space "t" with old tuple - [1, "a"] and new tuple - [1, "b"]';
    const diverged = patch(rs, 's-2', { tarantool: { upstreamOk: false, lagMs: null, upstreams: [{ uuid: 'uuid-s-1', status: 'stopped', message }] } });
    const view = buildClusterView(cluster(1000, diverged), p, {}, new Map(), T, 's-0');
    expect(view.replicasets[0]?.instances[2]).toEqual({
      pod: 's-2',
      role: 'replica',
      healthy: false,
      lag: null,
      problem: `s-2 diverged: an upstream stopped on a row that conflicts with its data (${message})`,
      diverged: { from: 's-1', error: message, repair: null },
    });
    // Being repaired: down while it rebootstraps, the repair says where it is; following again, not diverged.
    const repairs = [{ pod: 's-2', error: message, sinceMs: 1, step: 'rejoining' as const, stepAtMs: 2, rebootstraps: 1, diverged: true }];
    const q = persisted(7, { s: { ...st, repairs } });
    const down = buildClusterView(cluster(1000, patch(rs, 's-2', { tarantool: null, agentReachable: false })), q, {}, new Map(), T, 's-0');
    expect(down.replicasets[0]?.instances[2]?.diverged).toEqual({ from: 's-1', error: message, repair: 'rejoining' });
    expect(buildClusterView(observed, q, {}, new Map(), T, 's-0').replicasets[0]?.instances[2]).not.toHaveProperty('diverged');
    const topology = buildTarantoolTopology(cluster(1000, diverged), p, 'ns', 'c');
    expect(decodeTopologyMessage(encodeTopologyMessage({ view: down, topology })).view).toEqual(down);
    const bad = JSON.parse(JSON.stringify(encodeTopologyMessage({ view, topology }))) as { view: { replicasets: Array<{ instances: Array<Record<string, unknown>> }> } };
    const member = bad.view.replicasets[0]?.instances[2];
    if (member) member['diverged'] = { from: 's-1', error: 'x', repair: 'hoping' };
    expect(() => decodeTopologyMessage(bad as unknown as Parameters<typeof decodeTopologyMessage>[0])).toThrow('diverged.repair');
  });
});

describe('persisted state decoder', () => {
  const { state: st } = formed('s', 3, 0);
  it('accepts what the core writes, and an older state without masterQuorum', () => {
    const p = persisted(3, { s: st });
    expect(decodePersistedState(JSON.parse(JSON.stringify(p)))).toEqual(p);
    const { masterQuorum: _q, ...old } = st;
    expect(decodePersistedState({ term: 1, coordinator: null, replicasets: { s: old } }).replicasets['s']?.masterQuorum).toBeNull();
  });
  it('accepts replication repairs, and an older state without them', () => {
    const repairs = [
      { pod: 's-1', error: 'CONFIRM…', sinceMs: 1, step: 'rebootstrapping' as const, stepAtMs: 2, rebootstraps: 1 },
      { pod: 's-2', error: 'Duplicate key…', sinceMs: 1, step: 'restarted' as const, stepAtMs: 2, rebootstraps: 0, diverged: true },
    ];
    const p = persisted(3, { s: { ...st, repairs } });
    expect(decodePersistedState(JSON.parse(JSON.stringify(p)))).toEqual(p);
    const { repairs: _r, ...old } = st;
    expect(decodePersistedState({ term: 1, coordinator: null, replicasets: { s: old } }).replicasets['s']?.repairs).toEqual([]);
  });
  it.each([
    ['a negative term', { term: -1, coordinator: null, replicasets: {} }, 'state.term'],
    ['members not a list', { term: 1, coordinator: null, replicasets: { s: { ...st, members: {} } } }, 'state.replicasets.s.members'],
    ['a bad repair step', { term: 1, coordinator: null, replicasets: { s: { ...st, repairs: [{ pod: 'a', error: '', sinceMs: 1, step: 'hoping', stepAtMs: 1, rebootstraps: 0 }] } } }, 'step'],
    ['a diverged flag that is no boolean', { term: 1, coordinator: null, replicasets: { s: { ...st, repairs: [{ pod: 'a', error: '', sinceMs: 1, step: 'restarted', stepAtMs: 1, rebootstraps: 0, diverged: 'yes' }] } } }, 'diverged'],
    ['a bad quarantine reason', { term: 1, coordinator: null, replicasets: { s: { ...st, quarantined: [{ pod: 'a', why: 'bored', sinceMs: 1, rebootstrapRequestedAtMs: null }] } } }, 'why'],
  ])('refuses %s', (_name, raw, where) => {
    expect(() => decodePersistedState(raw)).toThrow(where);
  });
});

describe('/switchover request checks', () => {
  it('reads the bearer token of an Authorization header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
  it.each([
    ['{"replicaset":"storage"}', { replicaset: 'storage', requestedBy: 'POST /switchover' }],
    ['{"replicaset":"storage","to":"storage-2"}', { replicaset: 'storage', to: 'storage-2', requestedBy: 'POST /switchover' }],
    ['not json', 'the body must be JSON'],
    ['[]', 'JSON object'],
    ['{"to":"x"}', '"replicaset"'],
    ['{"replicaset":"storage","to":5}', '"to"'],
    ['{"replicaset":"storage","from":"storage-0"}', { replicaset: 'storage', from: 'storage-0', requestedBy: 'POST /switchover' }],
    ['{"replicaset":"storage","from":"Not A Pod"}', '"from"'],
  ])('%s', (body, want) => {
    const r = parseSwitchoverBody(body);
    if (typeof want === 'string') expect(r).toContain(want);
    else expect(r).toEqual(want);
  });
});

describe('control timings', () => {
  it('derives the Lease from SHOAL_LEASE_SECONDS and refuses a failover timeout too short to self-fence first', () => {
    const base = { leaseSeconds: 15, failoverTimeoutMs: 10_000, prestopTimeoutMs: 30_000, consoleTimeoutMs: 10_000, statusTimeoutMs: 2_000 };
    expect(electionTimings(base.leaseSeconds)).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
    expect(deriveTimings(base)).toMatchObject({ failoverTimeoutMs: 10_000, heartbeatIntervalMs: 250 });
    expect(() => deriveTimings({ ...base, failoverTimeoutMs: 1_000 })).toThrow('SHOAL_FAILOVER_TIMEOUT_MS');
  });
});
