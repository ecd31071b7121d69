// Pure mapping from what the coordinator's agent knows — pods and StatefulSets from the watches, the
// mesh's heartbeats, its own Tarantool, the persisted members — to the core's ObservedCluster, and
// the "continuously since" bookkeeping (trackSince) that turns symptoms into durations.
import { instanceUuid } from '../../shared/identity.js';
import { inMajority, trackSince } from '../coordinator/fencing.js';
import type { ObservedCluster, ObservedInstance, ObservedReplicaSet, ObservedTarantool, PersistedState } from '../coordinator/model.js';
import type { Peer } from '../kube/peers.js';
import type { ReplicaSetSpec } from '../kube/statefulsets.js';

/** What another agent's latest fresh heartbeat says. */
export interface HeardAgent {
  /** The peers it hears. */
  sees: readonly string[];
  /** null when its heartbeat carries no report (an older agent). */
  tarantool: ObservedTarantool | null;
}

export interface ObservationInput {
  now: number;
  namespace: string;
  cluster: string;
  /** The coordinator's pod. */
  self: string;
  /** Tarantool's iproto port (the same in every pod: SHOAL_LISTEN_PORT). */
  listenPort: number;
  pods: ReadonlyMap<string, Peer>;
  statefulSets: ReadonlyMap<string, ReplicaSetSpec>;
  persisted: PersistedState;
  /** The peers the coordinator's own mesh hears now. */
  selfSees: readonly string[];
  selfTarantool: ObservedTarantool;
  /** Agents whose heartbeat is fresh (within the heartbeat timeout), by pod. */
  heard: ReadonlyMap<string, HeardAgent>;
}

export interface Since {
  unreachableSinceMs: number | null;
  tarantoolDownSinceMs: number | null;
}

export type SinceMap = ReadonlyMap<string, Since>;

/** The pod's replica set: its owning StatefulSet, or for an owner-less pod a watched StatefulSet its name fits. */
export function replicaSetOf(peer: Peer, sets: ReadonlyMap<string, ReplicaSetSpec>): { name: string; ordinal: number } | null {
  if (peer.replicaset !== null && peer.ordinal !== null) return { name: peer.replicaset, ordinal: peer.ordinal };
  for (const name of sets.keys()) {
    const m = new RegExp(`^${name.replace(/[.]/g, '\\.')}-(0|[1-9][0-9]{0,8})$`).exec(peer.pod);
    if (m?.[1] !== undefined) return { name, ordinal: Number(m[1]) };
  }
  return null;
}

/**
 * The agents of the cluster: labelled pods with an IP (a pod without one runs no agent yet), and the
 * coordinator itself. The same set the mesh dials, so both sides count majorities alike.
 */
export function agentsOf(input: Pick<ObservationInput, 'pods' | 'self'>): Set<string> {
  const agents = new Set<string>([input.self]);
  for (const p of input.pods.values()) if (p.ip !== null) agents.add(p.pod);
  return agents;
}

/** How many other agents see `pod` now, of how many others there are. */
export function reachableFrom(pod: string, agents: ReadonlySet<string>, input: ObservationInput): { peers: number; of: number } {
  let peers = 0;
  let of = 0;
  for (const viewer of agents) {
    if (viewer === pod) continue;
    of++;
    const sees = viewer === input.self ? input.selfSees : input.heard.get(viewer)?.sees;
    if (sees?.includes(pod)) peers++;
  }
  return { peers, of };
}

interface Symptoms {
  unreachable: boolean;
  tarantoolDown: boolean;
}

function symptomsOf(inst: Omit<ObservedInstance, 'unreachableSinceMs' | 'tarantoolDownSinceMs'>, isAgent: boolean): Symptoms {
  if (!inst.podExists) return { unreachable: true, tarantoolDown: true };
  const { peers, of } = inst.reachableFrom;
  return {
    // Cut off = the mesh majority (this pod's agent included) does not hear it.
    unreachable: !isAgent || !inMajority(peers, of + 1),
    // Only what an agent reports counts: an unreachable agent's Tarantool is unknown, not down.
    tarantoolDown: inst.tarantool !== null && !inst.tarantool.alive,
  };
}

function podInstance(peer: Peer, ordinal: number, agents: ReadonlySet<string>, input: ObservationInput) {
  const self = peer.pod === input.self;
  const heard = input.heard.get(peer.pod);
  const agentReachable = self || (heard !== undefined && input.selfSees.includes(peer.pod));
  const tarantool = self ? input.selfTarantool : agentReachable ? (heard?.tarantool ?? null) : null;
  return {
    pod: peer.pod,
    ordinal,
    uid: peer.uid || null,
    instanceUuid: instanceUuid(input.namespace, input.cluster, peer.pod),
    podExists: true,
    podReady: peer.ready,
    deleting: peer.deleting,
    revision: peer.revision,
    uri: peer.ip === null ? null : `${peer.ip.includes(':') ? `[${peer.ip}]` : peer.ip}:${input.listenPort}`,
    agentReachable,
    reachableFrom: reachableFrom(peer.pod, agents, input),
    tarantool,
  };
}

function ordinalFromName(pod: string, rs: string): number {
  const n = Number(pod.slice(rs.length + 1));
  return Number.isInteger(n) && n >= 0 ? n : Number.MAX_SAFE_INTEGER;
}

/**
 * One observation. `previous` holds each pod's "since" timestamps from the last round; the returned
 * `since` replaces it. StatefulSets whose status has no revision yet are left out (the core would
 * otherwise take every pod for out of date and restart it).
 */
export function observeCluster(input: ObservationInput, previous: SinceMap): { cluster: ObservedCluster; since: Map<string, Since> } {
  const agents = agentsOf(input);
  const since = new Map<string, Since>();
  const withSince = (inst: Omit<ObservedInstance, 'unreachableSinceMs' | 'tarantoolDownSinceMs'>): ObservedInstance => {
    const s = symptomsOf(inst, agents.has(inst.pod));
    const prev = previous.get(inst.pod);
    const next: Since = {
      unreachableSinceMs: trackSince(prev?.unreachableSinceMs ?? null, s.unreachable, input.now),
      tarantoolDownSinceMs: trackSince(prev?.tarantoolDownSinceMs ?? null, s.tarantoolDown, input.now),
    };
    since.set(inst.pod, next);
    return { ...inst, ...next };
  };

  const byReplicaSet = new Map<string, Array<{ peer: Peer; ordinal: number }>>();
  for (const peer of input.pods.values()) {
    const rs = replicaSetOf(peer, input.statefulSets);
    if (rs === null) continue;
    const list = byReplicaSet.get(rs.name) ?? [];
    list.push({ peer, ordinal: rs.ordinal });
    byReplicaSet.set(rs.name, list);
  }

  const replicasets: ObservedReplicaSet[] = [];
  for (const spec of [...input.statefulSets.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const updateRevision = spec.updateRevision ?? spec.currentRevision;
    if (updateRevision === null) continue;
    const pods = (byReplicaSet.get(spec.name) ?? []).sort((a, b) => a.ordinal - b.ordinal);
    const instances = pods.map(({ peer, ordinal }) => withSince(podInstance(peer, ordinal, agents, input)));
    const present = new Set(instances.map((i) => i.pod));
    // Every persisted member is reported, gone or not: the core decides expel and failover on them.
    for (const m of input.persisted.replicasets[spec.name]?.members ?? []) {
      if (present.has(m.pod)) continue;
      instances.push(
        withSince({
          pod: m.pod,
          ordinal: ordinalFromName(m.pod, spec.name),
          uid: null,
          instanceUuid: m.uuid,
          podExists: false,
          podReady: false,
          deleting: false,
          revision: null,
          uri: null,
          agentReachable: false,
          reachableFrom: { peers: 0, of: agents.size - (agents.has(m.pod) ? 1 : 0) },
          tarantool: null,
        }),
      );
    }
    replicasets.push({ name: spec.name, specReplicas: spec.replicas, updateRevision, failover: spec.failover, paused: spec.paused, instances });
  }

  const reachable = 1 + input.selfSees.filter((p) => p !== input.self && agents.has(p)).length;
  return { cluster: { now: input.now, mesh: { size: agents.size, reachableFromCoordinator: reachable }, replicasets }, since };
}
