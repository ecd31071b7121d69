// The observer's pure mapping (pods, StatefulSets, heartbeats, persisted members → ObservedCluster),
// its "since" tracking across rounds, and what a new coordinator carries on of it, as tables; and a
// property: a new coordinator never fails a master over sooner after its loss than heartbeats allow.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detectMasterFailure } from '../../agent/decide/failover.js';
import type { ObservedCluster, ObservedTarantool, PersistedState } from '../../agent/decide/model.js';
import { DEFAULT_TIMINGS } from '../../agent/decide/timings.js';
import { Observer } from '../../agent/member/observer.js';
import { inheritSince, observeCluster, replicaSetOf, type HeardAgent, type ObservationInput, type Since, type SinceMap } from '../../agent/member/observation.js';
import type { Peer } from '../../agent/kube/peers.js';
import type { ReplicaSetSpec } from '../../agent/kube/statefulsets.js';
import type { Heartbeat } from '../../agent/wire/mesh-protocol.js';
import { instanceUuid } from '../../common/identity.js';
import { observedTarantool } from './decide-fixtures.js';

const T = (over: Partial<ObservedTarantool> = {}): ObservedTarantool => observedTarantool({ vclock: { '1': 5 }, id: 2, ...over });

const peer = (n: number, over: Partial<Peer> = {}): Peer => ({
  pod: `s-${n}`,
  uid: `uid-${n}`,
  ip: `10.0.0.${n + 1}`,
  replicaset: 's',
  ordinal: n,
  ready: true,
  deleting: false,
  revision: 'rev-1',
  phase: 'Running',
  ...over,
});

const spec = (over: Partial<ReplicaSetSpec> = {}): ReplicaSetSpec => ({
  name: 's',
  uid: 'sts-uid',
  replicas: 3,
  updateRevision: 'rev-1',
  currentRevision: 'rev-1',
  readyReplicas: 3,
  failover: 'auto',
  paused: false,
  tarantoolContainer: null,
  shardingRole: null,
  problems: [],
  ...over,
});

const EMPTY: PersistedState = { term: 1, coordinator: 's-0', replicasets: {} };

/** Coordinator s-0; everyone hears everyone unless overridden. */
function input(over: Partial<ObservationInput> = {}, heardOver: Record<string, HeardAgent | null> = {}): ObservationInput {
  const pods = new Map([0, 1, 2].map((n) => [`s-${n}`, peer(n)] as const));
  const heard = new Map<string, HeardAgent>();
  for (const pod of ['s-1', 's-2']) {
    const h = pod in heardOver ? heardOver[pod] : { sees: ['s-0', 's-1', 's-2'].filter((p) => p !== pod), tarantool: T() };
    if (h) heard.set(pod, h);
  }
  return {
    now: 1000,
    namespace: 'ns',
    cluster: 'c',
    self: 's-0',
    listenPort: 3301,
    pods,
    statefulSets: new Map([['s', spec()]]),
    persisted: EMPTY,
    selfSees: ['s-1', 's-2'],
    selfTarantool: T({ ro: false, id: 1 }),
    heard,
    ...over,
  };
}

const inst = (r: ReturnType<typeof observeCluster>, pod: string) => r.cluster.replicasets[0]?.instances.find((i) => i.pod === pod);

describe('observeCluster mapping', () => {
  it('maps a healthy three-pod replica set', () => {
    const r = observeCluster(input(), new Map());
    expect(r.cluster.mesh).toEqual({ size: 3, reachableFromCoordinator: 3 });
    expect(r.cluster.replicasets).toHaveLength(1);
    const s1 = inst(r, 's-1');
    expect(s1).toMatchObject({
      pod: 's-1',
      ordinal: 1,
      uid: 'uid-1',
      instanceUuid: instanceUuid('ns', 'c', 's-1'),
      podExists: true,
      podReady: true,
      uri: '10.0.0.2:3301',
      agentReachable: true,
      reachableFrom: { peers: 2, of: 2 },
      unreachableSinceMs: null,
      tarantoolDownSinceMs: null,
    });
    expect(inst(r, 's-0')?.tarantool?.ro).toBe(false); // the coordinator's own probe
  });

  it.each([
    ['a pod without an IP is no agent: unreachable, not counted in the mesh', input({ pods: new Map([...input().pods, ['s-2', peer(2, { ip: null })]]) }, { 's-2': null }), 's-2', { agentReachable: false, uri: null, unreachable: true }, 2],
    ['an agent the coordinator does not hear has no Tarantool report', input({ selfSees: ['s-1'] }), 's-2', { agentReachable: false, uri: '10.0.0.3:3301', unreachable: false }, 3],
    ['an agent nobody hears is cut off', input({ selfSees: ['s-1'] }, { 's-1': { sees: ['s-0'], tarantool: T() }, 's-2': null }), 's-2', { agentReachable: false, uri: '10.0.0.3:3301', unreachable: true }, 3],
  ] as const)('%s', (_name, inp, pod, want, meshSize) => {
    const r = observeCluster(inp, new Map());
    const i = inst(r, pod);
    expect(i?.agentReachable).toBe(want.agentReachable);
    expect(i?.uri).toBe(want.uri);
    expect(i?.unreachableSinceMs !== null).toBe(want.unreachable);
    if (!want.agentReachable) expect(i?.tarantool).toBeNull();
    expect(r.cluster.mesh.size).toBe(meshSize);
  });

  it('counts who sees whom from every fresh heartbeat', () => {
    // s-2 hears nobody and nobody hears s-2, but s-1 reports s-2 in its view: one of two others.
    const r = observeCluster(input({ selfSees: ['s-1'] }, { 's-1': { sees: ['s-0', 's-2'], tarantool: T() }, 's-2': null }), new Map());
    expect(inst(r, 's-2')?.reachableFrom).toEqual({ peers: 1, of: 2 });
    // 1 of 2 others + itself = 2 of 3: a majority, so not cut off.
    expect(inst(r, 's-2')?.unreachableSinceMs).toBeNull();
    expect(r.cluster.mesh.reachableFromCoordinator).toBe(2);
  });

  it('reports persisted members whose pod is gone', () => {
    const persisted: PersistedState = {
      term: 3,
      coordinator: 's-0',
      replicasets: { s: { master: 's-0', members: [{ pod: 's-0', uuid: 'u0', id: 1 }, { pod: 's-3', uuid: 'u3', id: 4 }], expelled: [], quarantined: [], switchover: null, rollout: null, masterQuorum: 2, repairs: [] } },
    };
    const r = observeCluster(input({ persisted }), new Map());
    expect(inst(r, 's-3')).toMatchObject({ pod: 's-3', ordinal: 3, instanceUuid: 'u3', podExists: false, uri: null, agentReachable: false, tarantool: null, unreachableSinceMs: 1000, tarantoolDownSinceMs: 1000 });
    expect(r.cluster.replicasets[0]?.instances.map((i) => i.pod)).toEqual(['s-0', 's-1', 's-2', 's-3']);
  });

  it('leaves out a StatefulSet whose status has no revision yet (its pods would all look outdated)', () => {
    const r = observeCluster(input({ statefulSets: new Map([['s', spec({ updateRevision: null, currentRevision: null })]]) }), new Map());
    expect(r.cluster.replicasets).toEqual([]);
    const fallback = observeCluster(input({ statefulSets: new Map([['s', spec({ updateRevision: null, currentRevision: 'rev-0' })]]) }), new Map());
    expect(fallback.cluster.replicasets[0]?.updateRevision).toBe('rev-0');
  });

  it.each([
    ['owned pod', peer(1), { name: 's', ordinal: 1 }],
    ['owner-less pod named after a watched StatefulSet', peer(7, { replicaset: null, ordinal: null }), { name: 's', ordinal: 7 }],
    ['owner-less pod of nobody', peer(1, { pod: 'other-1', replicaset: null, ordinal: null }), null],
    ['not an ordinal', peer(1, { pod: 's-01', replicaset: null, ordinal: null }), null],
  ] as const)('replicaSetOf: %s', (_name, p, want) => {
    expect(replicaSetOf(p, new Map([['s', spec()]]))).toEqual(want);
  });
});

describe('since tracking across rounds', () => {
  const rounds: Array<{ now: number; s2Heard: boolean; s2Alive: boolean; want: Since }> = [
    { now: 1000, s2Heard: true, s2Alive: true, want: { unreachableSinceMs: null, tarantoolDownSinceMs: null } },
    { now: 1300, s2Heard: false, s2Alive: true, want: { unreachableSinceMs: 1300, tarantoolDownSinceMs: null } },
    { now: 1600, s2Heard: false, s2Alive: true, want: { unreachableSinceMs: 1300, tarantoolDownSinceMs: null } },
    { now: 1900, s2Heard: true, s2Alive: false, want: { unreachableSinceMs: null, tarantoolDownSinceMs: 1900 } },
    { now: 2200, s2Heard: true, s2Alive: false, want: { unreachableSinceMs: null, tarantoolDownSinceMs: 1900 } },
    { now: 2500, s2Heard: true, s2Alive: true, want: { unreachableSinceMs: null, tarantoolDownSinceMs: null } },
  ];

  it('keeps the first moment of an unbroken run and clears it when the symptom ends', () => {
    let since = new Map<string, Since>();
    for (const r of rounds) {
      const heard = r.s2Heard ? { sees: ['s-0', 's-1'], tarantool: T({ alive: r.s2Alive }) } : null;
      const s1 = { sees: r.s2Heard ? ['s-0', 's-2'] : ['s-0'], tarantool: T() };
      const out = observeCluster(input({ now: r.now, selfSees: r.s2Heard ? ['s-1', 's-2'] : ['s-1'] }, { 's-1': s1, 's-2': heard }), since);
      expect(out.since).not.toBeNull(); // s-0 hears a majority throughout
      since = out.since ?? new Map();
      const s2 = inst(out, 's-2');
      expect({ now: r.now, unreachableSinceMs: s2?.unreachableSinceMs, tarantoolDownSinceMs: s2?.tarantoolDownSinceMs }).toEqual({ now: r.now, ...r.want });
    }
  });
});

describe('which observations count', () => {
  const before = new Map<string, Since>([['s-2', { unreachableSinceMs: 100, tarantoolDownSinceMs: null }]]);
  it.each([
    ['hears every agent', input({ selfSees: ['s-1'] }, { 's-1': { sees: ['s-0'], tarantool: T() }, 's-2': null }), true],
    ['hears one of two others: 2 of 3 agents', input({ selfSees: ['s-1'] }, { 's-2': null }), true],
    ['a freshly started agent whose mesh is not connected hears nobody', input({ selfSees: [] }, { 's-1': null, 's-2': null }), false],
    ['its pod watch has not listed yet: it would count itself a majority of one', input({ pods: new Map(), selfSees: [] }, { 's-1': null, 's-2': null }), false],
  ] as const)('%s', (_name, inp, counts) => {
    const r = observeCluster(inp, before);
    expect(r.since !== null).toBe(counts);
    // Without a majority the old memory is not used either: a symptom seen now starts now.
    if (!counts) for (const i of r.cluster.replicasets[0]?.instances ?? []) expect([null, inp.now]).toContain(i.unreachableSinceMs);
  });
});

describe('inheritSince: what a new coordinator carries on', () => {
  const since: SinceMap = new Map([
    ['s-1', { unreachableSinceMs: 7000, tarantoolDownSinceMs: null }],
    ['s-2', { unreachableSinceMs: null, tarantoolDownSinceMs: null }],
  ]);
  it.each([
    ['never observed with a majority', null, 10_000, 0, 'no observation with a mesh majority'],
    ['observed this very moment', 10_000, 10_000, 2, 'running for: s-1'],
    ['observed one heartbeat timeout ago', 9_000, 10_000, 2, 'carries on'],
    ['observed longer ago than the heartbeat timeout (a recovery could hide in between)', 8_999, 10_000, 0, 'not within the 1.0 s heartbeat timeout'],
    ['observed "later" than now (the clock went back)', 10_500, 10_000, 0, 'not within'],
  ] as const)('%s', (_name, observedAt, now, entries, reason) => {
    const r = inheritSince({ since, observedAt }, now, 1000);
    expect(r.since.size).toBe(entries);
    if (entries > 0) expect(r.since.get('s-1')).toEqual({ unreachableSinceMs: 7000, tarantoolDownSinceMs: null });
    expect(r.reason).toContain(reason);
  });
});

/*
 * A toy timeline on the real observation functions. s-0 follows, then takes over at `takeover`.
 * The master s-1's agent sends heartbeats at `beats` and is lost after the last one; a heartbeat is
 * fresh for HB (so every agent sees s-1 until then). s-0 may hear only some agents for a while
 * (`deaf`: a mesh not connected yet, a flaky link) and may not tick at all for a while (`stalls`).
 */
describe('a new coordinator and the failover clock', () => {
  const HB = DEFAULT_TIMINGS.heartbeatTimeoutMs;
  const ROUND = 300;
  const FAILOVER = DEFAULT_TIMINGS.failoverTimeoutMs;
  interface World {
    n: number;
    beats: readonly number[];
    deaf: ReadonlyArray<{ from: number; to: number; hears: readonly number[] }>;
    stalls: ReadonlyArray<{ from: number; to: number }>;
    takeover: number;
  }
  const within = <W extends { from: number; to: number }>(ws: readonly W[], t: number): W | undefined => ws.find((w) => w.from <= t && t < w.to);

  function observation(w: World, t: number): ObservationInput {
    const all = Array.from({ length: w.n }, (_, i) => i);
    const masterSeen = w.beats.some((b) => b <= t && t - b <= HB);
    const up = (i: number) => i !== 1 || masterSeen;
    const hears = (within(w.deaf, t)?.hears ?? all).filter((i) => i !== 0 && i < w.n && up(i));
    const heard = new Map<string, HeardAgent>(
      hears.map((i) => [`s-${i}`, { sees: all.filter((j) => j !== i && up(j)).map((j) => `s-${j}`), tarantool: T() }]),
    );
    const members = all.map((i) => ({ pod: `s-${i}`, uuid: `u${i}` }));
    return {
      ...input({ now: t, heard, selfSees: hears.map((i) => `s-${i}`) }),
      pods: new Map(all.map((i) => [`s-${i}`, peer(i)] as const)),
      statefulSets: new Map([['s', spec({ replicas: w.n })]]),
      persisted: { replicasets: { s: { members } } },
    };
  }

  /** When the new coordinator fails s-1 over (null: not within the horizon). */
  function failoverAt(w: World): number | null {
    let since: SinceMap = new Map();
    let observedAt: number | null = null;
    for (let t = 0; t < w.takeover; t += ROUND) {
      if (within(w.stalls, t)) continue;
      since = inheritSince({ since, observedAt }, t, HB).since; // as Observer.follow
      const out = observeCluster(observation(w, t), since);
      since = out.since ?? new Map();
      observedAt = out.since ? t : null;
    }
    since = inheritSince({ since, observedAt }, w.takeover, HB).since;
    const lost = w.beats[w.beats.length - 1] ?? 0;
    for (let t = w.takeover; t <= Math.max(lost, w.takeover) + HB + FAILOVER + 2 * ROUND; t += ROUND) {
      const out = observeCluster(observation(w, t), since);
      since = out.since ?? new Map();
      const rs = out.cluster.replicasets[0];
      // reconcile acts only with a majority: the same condition under which an observation counts
      if (out.since && rs && detectMasterFailure(rs, 's-1', t, DEFAULT_TIMINGS).verdict === 'failed') return t;
    }
    return null;
  }

  const steady = (until: number) => Array.from({ length: until / 250 + 1 }, (_, i) => i * 250);
  // The last column: when the failover clock starts (the failover comes FAILOVER later, at the next round).
  it.each([
    ['kept counting while following: the clock starts when heartbeats showed the loss', { takeover: 9000 }, 10_000 + HB],
    ['took over at the loss: the same', { takeover: 10_000 }, 10_000 + HB],
    ['deaf (no majority) until the takeover: from the takeover', { takeover: 14_000, deaf: [{ from: 0, to: 14_000, hears: [] }] }, 14_000],
    ['stalled longer than a heartbeat timeout before the takeover: from the takeover', { takeover: 14_000, stalls: [{ from: 12_500, to: 14_000 }] }, 14_000],
    ['a short stall within the heartbeat timeout: keeps the clock', { takeover: 14_000, stalls: [{ from: 13_300, to: 14_000 }] }, 10_000 + HB],
    [
      'a stall while following hid a short return of the master: from the first tick after the stall',
      { takeover: 8000, beats: [...steady(3000), 6000, 6250], stalls: [{ from: 5900, to: 7400 }] },
      7500,
    ],
  ] as const)('%s', (_name, over, clockStart) => {
    const at = failoverAt({ n: 3, beats: steady(10_000), deaf: [], stalls: [], ...over });
    expect(at).not.toBeNull();
    expect(at ?? 0).toBeGreaterThanOrEqual(clockStart + FAILOVER);
    expect(at ?? 0).toBeLessThanOrEqual(clockStart + FAILOVER + 2 * ROUND);
  });

  const world: fc.Arbitrary<World> = fc
    .record({
      n: fc.constantFrom(3, 5),
      gaps: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constant(250) }, { weight: 1, arbitrary: fc.integer({ min: 300, max: 8000 }) }), { minLength: 1, maxLength: 40 }),
      deaf: fc.array(fc.record({ from: fc.nat(25_000), len: fc.integer({ min: 1, max: 6000 }), hears: fc.uniqueArray(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }) }), { maxLength: 4 }),
      stalls: fc.array(fc.record({ from: fc.nat(25_000), len: fc.integer({ min: 1, max: 4000 }) }), { maxLength: 3 }),
      takeover: fc.nat(30_000),
    })
    .map(({ n, gaps, deaf, stalls, takeover }) => ({
      n,
      beats: gaps.reduce<number[]>((acc, g) => [...acc, (acc[acc.length - 1] ?? 0) + g], [0]),
      deaf: deaf.map((d) => ({ from: d.from, to: d.from + d.len, hears: d.hears })),
      stalls: stalls.map((s) => ({ from: s.from, to: s.from + s.len })),
      takeover,
    }));

  it("never fails over sooner after the master's loss than a coordinator watching from the loss on would (property)", () => {
    fc.assert(
      fc.property(world, (w) => {
        const at = failoverAt(w);
        if (at === null) return true;
        // The outage it acts on began after the last heartbeat before it; heartbeats show it HB
        // later, and only then may the failover clock start.
        const lost = Math.max(...w.beats.filter((b) => b <= at));
        return at - lost >= HB + FAILOVER;
      }),
      { numRuns: Number(process.env['SHOAL_PROPERTY_RUNS'] ?? 300) },
    );
  });
});

describe('Observer: following, then a new term', () => {
  it('keeps an unbroken run while following, drops it after a stall, carries it into the term; acks are not carried', () => {
    let clock = 0;
    const observer = new Observer({
      namespace: 'ns',
      cluster: 'c',
      self: 's-0',
      listenPort: 3301,
      pods: () => input().pods,
      statefulSets: () => input().statefulSets,
      sees: () => ['s-1'],
      local: () => ({ at: clock, state: null, error: null, offline: null }),
      heartbeatTimeoutMs: 1000,
      monotonic: () => clock,
    });
    // s-2 is gone: s-0 and s-1 hear each other only.
    const hb = (): Heartbeat => ({
      type: 'heartbeat',
      v: 1,
      pod: 's-1',
      term: 1,
      sentAt: clock,
      agentVersion: 'test',
      sees: ['s-0'],
      instance: { role: 'replica', ro: true, vclock: {}, lag: 0, healthy: true, configured: true, upstreams: [] },
    });
    const at = (now: number, act: () => ObservedCluster) => {
      clock = now;
      observer.heartbeat(hb());
      return act().replicasets[0]?.instances.find((i) => i.pod === 's-2')?.unreachableSinceMs;
    };
    const follow = (now: number) => at(now, () => observer.follow(EMPTY, now));
    expect(follow(1000)).toBe(1000);
    expect(follow(1300)).toBe(1000);
    expect(follow(2400)).toBe(2400); // 1.1 s without a tick: a return of s-2 could hide in it
    observer.acknowledged('s-1', T({ alive: false }), Number.MAX_SAFE_INTEGER);
    clock = 2500;
    expect(observer.beginTerm(2500)).toContain('running for: s-0, s-2');
    const s1 = observer.observe(EMPTY, 2600).replicasets[0]?.instances.find((i) => i.pod === 's-1');
    expect(s1?.tarantoolDownSinceMs).toBeNull(); // the old term's ack is gone
    expect(at(2600, () => observer.observe(EMPTY, 2600))).toBe(2400);
  });
});
