// The observer's pure mapping (pods, StatefulSets, heartbeats, persisted members → ObservedCluster)
// and its "since" tracking across rounds, as tables.
import { describe, expect, it } from 'vitest';
import type { ObservedTarantool, PersistedState } from '../../agent/coordinator/model.js';
import { observeCluster, replicaSetOf, type HeardAgent, type ObservationInput, type Since } from '../../agent/control/observe.js';
import type { Peer } from '../../agent/kube/peers.js';
import type { ReplicaSetSpec } from '../../agent/kube/statefulsets.js';
import { instanceUuid } from '../../shared/identity.js';

const T = (over: Partial<ObservedTarantool> = {}): ObservedTarantool => ({
  configured: true,
  alive: true,
  ro: true,
  status: 'running',
  vclock: { '1': 5 },
  id: 2,
  upstreamOk: true,
  upstreams: [],
  lagMs: 0,
  replication: [],
  synchroQuorum: 2,
  clusterUuids: [],
  ...over,
});

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
      since = out.since;
      const s2 = inst(out, 's-2');
      expect({ now: r.now, unreachableSinceMs: s2?.unreachableSinceMs, tarantoolDownSinceMs: s2?.tarantoolDownSinceMs }).toEqual({ now: r.now, ...r.want });
    }
  });
});
