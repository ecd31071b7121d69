// Builders for coordinator observations and state: a formed, healthy replica set by default, which
// each test bends in the one way it is about.
import type {
  Action,
  ObservedCluster,
  ObservedInstance,
  ObservedReplicaSet,
  ObservedTarantool,
  PersistedReplicaSet,
  PersistedState,
  PlannedAction,
  Timings,
} from '../../agent/decide/model.js';
import { DEFAULT_TIMINGS } from '../../agent/decide/timings.js';

export const T: Timings = DEFAULT_TIMINGS;
export const NOW = 1_000_000;

export const uriOf = (pod: string): string => `${pod}.ip:3301`;
export const uuidOf = (pod: string): string => `uuid-${pod}`;
const ordinalOf = (pod: string): number => Number(pod.slice(pod.lastIndexOf('-') + 1));

export type InstanceOverrides = Partial<Omit<ObservedInstance, 'tarantool'>> & {
  tarantool?: Partial<ObservedTarantool> | null;
};

/** A configured, running, read-only replica following its master at vclock {1: 10}, bent by `over`. */
export function observedTarantool(over: Partial<ObservedTarantool> = {}): ObservedTarantool {
  return {
    configured: true,
    alive: true,
    ro: true,
    status: 'running',
    vclock: { 1: 10 },
    id: 1,
    upstreamOk: true,
    upstreams: [],
    lagMs: 0,
    replication: [],
    synchroQuorum: 2,
    clusterUuids: [],
    ...over,
  };
}

export function instance(pod: string, over: InstanceOverrides = {}): ObservedInstance {
  const { tarantool: t, ...rest } = over;
  const base: ObservedInstance = {
    pod,
    ordinal: ordinalOf(pod),
    uid: `uid-${pod}`,
    instanceUuid: uuidOf(pod),
    podExists: true,
    podReady: true,
    deleting: false,
    revision: 'rev-1',
    uri: uriOf(pod),
    agentReachable: true,
    reachableFrom: { peers: 2, of: 2 },
    unreachableSinceMs: null,
    tarantoolDownSinceMs: null,
    tarantool: null,
  };
  const tarantool: ObservedTarantool | null = t === null ? null : observedTarantool({ id: ordinalOf(pod) + 1, ...t });
  return { ...base, ...rest, tarantool };
}

/** An unconfigured instance with an empty data dir, as a freshly created pod reports it. */
export function fresh(pod: string, over: InstanceOverrides = {}): ObservedInstance {
  return instance(pod, {
    podReady: false,
    ...over,
    tarantool: { configured: false, ro: true, status: 'unconfigured', vclock: {}, id: null, upstreamOk: false, upstreams: [], lagMs: null, replication: [], synchroQuorum: null, clusterUuids: null, ...over.tarantool },
  });
}

export interface Formed {
  rs: ObservedReplicaSet;
  state: PersistedReplicaSet;
}

/** A healthy replica set `name` of `replicas` pods, master at `master`, everyone at vclock {1: 10}. */
export function formed(name = 's', replicas = 3, master = 0): Formed {
  const pods = Array.from({ length: replicas }, (_, n) => `${name}-${n}`);
  const replication = pods.map(uriOf).sort();
  const quorum = Math.floor(replicas / 2) + 1;
  const instances = pods.map((pod, n) =>
    instance(pod, {
      tarantool: {
        ro: n !== master,
        upstreamOk: n !== master,
        upstreams: pods.filter((_, m) => m !== n).map((peer) => ({ uuid: uuidOf(peer), status: 'follow', message: null })),
        lagMs: n === master ? null : 0,
        replication,
        synchroQuorum: quorum,
        clusterUuids: pods.map(uuidOf),
      },
    }),
  );
  return {
    rs: { name, specReplicas: replicas, updateRevision: 'rev-1', failover: 'auto', paused: false, instances },
    state: {
      master: `${name}-${master}`,
      members: pods.map((pod, n) => ({ pod, uuid: uuidOf(pod), id: n + 1 })),
      expelled: [],
      quarantined: [],
      switchover: null,
      rollout: null,
      masterQuorum: quorum,
      repairs: [],
    },
  };
}

/** Replace pod `pod`'s observation with overrides applied to it. */
export function patch(rs: ObservedReplicaSet, pod: string, over: InstanceOverrides): ObservedReplicaSet {
  return {
    ...rs,
    instances: rs.instances.map((i) =>
      i.pod !== pod
        ? i
        : {
            ...i,
            ...over,
            tarantool: over.tarantool === null ? null : over.tarantool === undefined ? i.tarantool : i.tarantool ? { ...i.tarantool, ...over.tarantool } : null,
          },
    ),
  };
}

export function without(rs: ObservedReplicaSet, pod: string): ObservedReplicaSet {
  return patch(rs, pod, { podExists: false, podReady: false, uid: null, uri: null, agentReachable: false, tarantool: null });
}

export function cluster(now: number, ...sets: ObservedReplicaSet[]): ObservedCluster {
  const size = sets.reduce((n, rs) => n + rs.instances.filter((i) => i.podExists).length, 0);
  return { now, mesh: { size, reachableFromCoordinator: size }, replicasets: sets };
}

export function persisted(term: number, sets: Record<string, PersistedReplicaSet>): PersistedState {
  return { term, coordinator: 'coordinator-0', replicasets: sets };
}

export const kinds = (actions: readonly (Action | PlannedAction)[]): string[] =>
  actions.map((a) => ('pod' in a ? `${a.kind}:${a.pod}` : a.kind)).filter((k) => k !== 'event');

export function only<K extends Action['kind']>(actions: readonly Action[], kind: K): Array<Extract<Action, { kind: K }>> {
  return actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === kind);
}
