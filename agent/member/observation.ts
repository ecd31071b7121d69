// Pure mapping from what the coordinator's agent knows — pods and StatefulSets from the watches, the
// mesh's heartbeats, its own Tarantool, the persisted members — to the core's ObservedCluster, and
// the "continuously since" bookkeeping (trackSince) that turns symptoms into durations, and which
// of that memory a new coordinator may carry on (inheritSince).
import { instanceUuid } from '../../common/identity.js';
import { inMajority, trackSince } from '../decide/fencing.js';
import { podList, seconds } from '../decide/format.js';
import type { ObservedCluster, ObservedInstance, ObservedReplicaSet, ObservedTarantool } from '../decide/model.js';
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
  persisted: KnownMembers;
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

/**
 * Each replica set's members as far as the observer knows them: the persisted state on the
 * coordinator, the last published topology on a follower.
 */
export interface KnownMembers {
  replicasets: Readonly<Record<string, { members: ReadonlyArray<{ pod: string; uuid: string }> } | undefined>>;
}

/** An observer's "since" memory and when an observation that counted last brought it up to date. */
export interface SinceMemory {
  since: SinceMap;
  /** null: no observation has counted yet (or the last one did not). */
  observedAt: number | null;
}

/**
 * What an observation at `now` may carry on from the memory: a follower's every tick, and a new
 * coordinator's first round. Only a run observed without a break: the last counted observation at
 * most `maxGapMs` (the heartbeat timeout) before `now`, since a heartbeat stays fresh that long and
 * so no recovery can fall between two such observations unseen. Anything else starts from nothing,
 * so a symptom is never older than what was seen of it.
 */
export function inheritSince(memory: SinceMemory, now: number, maxGapMs: number): { since: Map<string, Since>; reason: string } {
  const { observedAt } = memory;
  if (observedAt === null) {
    return { since: new Map(), reason: 'no observation with a mesh majority to carry on: symptoms count from now' };
  }
  const gap = now - observedAt;
  if (gap < 0 || gap > maxGapMs) {
    return {
      since: new Map(),
      reason: `the last observation with a mesh majority was ${seconds(gap)} ago, not within the ${seconds(maxGapMs)} heartbeat timeout: symptoms count from now`,
    };
  }
  const ongoing = [...memory.since].filter(([, s]) => s.unreachableSinceMs !== null || s.tarantoolDownSinceMs !== null).map(([pod]) => pod);
  return {
    since: new Map(memory.since),
    reason: `carries on the symptom clocks observed while following ${seconds(gap)} ago (running for: ${podList(ongoing)})`,
  };
}

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
 * `since` replaces it, or is null when this observation does not count: the observer hears no mesh
 * majority (the condition under which a coordinator acts), or its pod watch has not listed yet (it
 * does not list the observer itself). Such an observation starts every symptom from now and leaves
 * nothing to remember, so missing data never passes for a long-lasting symptom. StatefulSets whose
 * status has no revision yet are left out (the core would otherwise take every pod for out of date
 * and restart it).
 */
export function observeCluster(input: ObservationInput, previous: SinceMap): { cluster: ObservedCluster; since: Map<string, Since> | null } {
  const agents = agentsOf(input);
  const reachable = 1 + input.selfSees.filter((p) => p !== input.self && agents.has(p)).length;
  const counts = input.pods.has(input.self) && inMajority(reachable - 1, agents.size);
  const since = new Map<string, Since>();
  const withSince = (inst: Omit<ObservedInstance, 'unreachableSinceMs' | 'tarantoolDownSinceMs'>): ObservedInstance => {
    const s = symptomsOf(inst, agents.has(inst.pod));
    const prev = counts ? previous.get(inst.pod) : undefined;
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
    replicasets.push({
      name: spec.name,
      specReplicas: spec.replicas,
      updateRevision,
      failover: spec.failover,
      paused: spec.paused,
      ...(spec.shardingRole ? { shardingAnnotation: spec.shardingRole } : {}),
      instances,
    });
  }

  return { cluster: { now: input.now, mesh: { size: agents.size, reachableFromCoordinator: reachable }, replicasets }, since: counts ? since : null };
}
