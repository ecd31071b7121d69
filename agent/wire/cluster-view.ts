// What the coordinator publishes after each round, pure: the cluster view every agent serves in
// /status (so it is the same from any pod), and the topology handed to Tarantool's on_topology
// hooks (SPEC §3: every replica set, its instances' UUIDs and URIs, its master). The topology holds
// only what a router needs, so health and lag changes do not wake the hooks.
import { replicasetUuid } from '../../common/identity.js';
import { DIVERGENCE_REPAIRS, type InstanceRole, type RolloutPhase, type StatusDivergence, type StatusReplicaSet } from '../../common/status.js';
import { divergedUpstream } from '../decide/divergence.js';
import { healthProblem, instanceOf } from '../decide/members.js';
import type { ObservedCluster, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, PersistedState, Timings } from '../decide/model.js';
import type { ReconcileResult } from '../decide/reconcile.js';
import type { JsonObject } from './mesh-protocol.js';

export interface RolloutView {
  replicaset: string;
  phase: RolloutPhase;
  next: string | null;
  reason: string;
}

export interface ClusterView {
  term: number;
  coordinator: string;
  replicasets: StatusReplicaSet[];
  rollouts: RolloutView[];
}

export interface TopologyInstance {
  pod: string;
  uuid: string;
  /** host:port without credentials; null while the pod is gone. */
  uri: string | null;
  master: boolean;
}

export interface TopologyReplicaSet {
  name: string;
  uuid: string;
  master: string | null;
  instances: TopologyInstance[];
}

export interface TarantoolTopology {
  cluster: string;
  namespace: string;
  replicasets: TopologyReplicaSet[];
}

export interface TopologyMessage {
  view: ClusterView;
  topology: TarantoolTopology;
}

const PHASES: readonly RolloutPhase[] = ['idle', 'restarting-replicas', 'switching-master', 'restarting-old-master', 'paused'];
const ROLES: readonly InstanceRole[] = ['master', 'replica', 'unconfigured', 'fenced'];

function roleOf(inst: ObservedInstance, master: string | null, reported: InstanceRole | undefined): InstanceRole {
  if (reported !== undefined) return reported;
  const t = inst.tarantool;
  if (!t || !t.configured) return 'unconfigured';
  if (!t.ro) return 'master';
  return inst.pod === master ? 'fenced' : 'replica';
}

/**
 * Whether `inst` diverged from the master: its upstream from the master stopped on a data conflict
 * (divergence.ts), or its repair says so (it may be down, rebootstrapping). null otherwise.
 */
export function divergenceOf(rs: ObservedReplicaSet, state: PersistedReplicaSet | undefined, inst: ObservedInstance): StatusDivergence | null {
  const master = state?.master ?? null;
  if (!state || master === null || inst.pod === master) return null;
  const entry = state.repairs.find((r) => r.pod === inst.pod && r.diverged === true);
  const repair = entry === undefined ? null : entry.step === 'restarted' ? 'reported' : entry.step;
  const masterInst = instanceOf(rs, master);
  const up = masterInst ? divergedUpstream(inst, masterInst) : null;
  if (up !== null) return { from: master, error: up.message ?? '', repair };
  // Rebootstrapped and following the master again: repaired (the core watches it a little longer).
  if (entry === undefined || inst.tarantool?.upstreams.some((u) => u.uuid === masterInst?.instanceUuid && u.status === 'follow')) return null;
  return { from: master, error: entry.error, repair };
}

export function buildClusterView(
  observed: ObservedCluster,
  persisted: PersistedState,
  report: ReconcileResult['replicasets'],
  roles: ReadonlyMap<string, InstanceRole>,
  timings: Timings,
  coordinator: string,
): ClusterView {
  const replicasets: StatusReplicaSet[] = observed.replicasets.map((rs) => {
    const state = persisted.replicasets[rs.name];
    const master = state?.master ?? null;
    const members = new Set(state?.members.map((m) => m.pod) ?? []);
    const instances = rs.instances
      .filter((i) => i.podExists || members.has(i.pod))
      .map((i) => {
        const problem = members.has(i.pod) ? healthProblem(i, i.pod === master ? 'master' : 'replica', timings) : `${i.pod} is not a member yet`;
        const diverged = members.has(i.pod) ? divergenceOf(rs, state, i) : null;
        return {
          pod: i.pod,
          role: roleOf(i, master, i.podExists ? roles.get(i.pod) : undefined),
          healthy: problem === null,
          lag: i.tarantool?.lagMs == null ? null : i.tarantool.lagMs / 1000,
          ...(problem === null ? {} : { problem }),
          ...(diverged === null ? {} : { diverged }),
        };
      });
    return { name: rs.name, master, instances };
  });
  const rollouts = Object.entries(report)
    .map(([replicaset, r]) => ({ replicaset, phase: r.rollout.phase, next: r.rollout.next, reason: r.rollout.reason }))
    .sort((a, b) => (a.replicaset < b.replicaset ? -1 : 1));
  return { term: persisted.term, coordinator, replicasets, rollouts };
}

export function buildTarantoolTopology(observed: ObservedCluster, persisted: PersistedState, namespace: string, cluster: string): TarantoolTopology {
  const replicasets: TopologyReplicaSet[] = [];
  for (const rs of observed.replicasets) {
    const state = persisted.replicasets[rs.name];
    if (!state || state.members.length === 0) continue;
    const instances = state.members.map((m) => {
      const inst = rs.instances.find((i) => i.pod === m.pod);
      return { pod: m.pod, uuid: m.uuid, uri: inst?.podExists ? inst.uri : null, master: m.pod === state.master };
    });
    replicasets.push({ name: rs.name, uuid: replicasetUuid(namespace, cluster, rs.name), master: state.master, instances });
  }
  return { cluster, namespace, replicasets };
}

export function encodeTopologyMessage(msg: TopologyMessage): JsonObject {
  return JSON.parse(JSON.stringify(msg)) as JsonObject;
}

type Rec = Record<string, unknown>;

class BadView extends Error {}

const rec = (v: unknown, where: string): Rec => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadView(`${where} must be an object`);
  return v as Rec;
};
const arr = (v: unknown, where: string): unknown[] => {
  if (!Array.isArray(v)) throw new BadView(`${where} must be an array`);
  return v;
};
const s = (v: unknown, where: string): string => {
  if (typeof v !== 'string') throw new BadView(`${where} must be a string`);
  return v;
};
const ns = (v: unknown, where: string): string | null => (v === null ? null : s(v, where));
const nn = (v: unknown, where: string): number | null => {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadView(`${where} must be a number or null`);
  return v;
};
const oneOf = <T extends string>(v: unknown, allowed: readonly T[], where: string): T => {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new BadView(`${where} must be one of ${allowed.join(', ')}`);
  return v as T;
};

function divergence(v: unknown): StatusDivergence {
  const o = rec(v, 'diverged');
  const repair = o['repair'] === null ? null : oneOf(o['repair'], DIVERGENCE_REPAIRS, 'diverged.repair');
  return { from: s(o['from'], 'diverged.from'), error: s(o['error'], 'diverged.error'), repair };
}

/** Validates a pushed topology message (from an authenticated coordinator of an accepted term). */
export function decodeTopologyMessage(v: JsonObject): TopologyMessage {
  try {
    const view = rec(v['view'], 'view');
    const term = view['term'];
    if (typeof term !== 'number' || !Number.isSafeInteger(term) || term < 0) throw new BadView('view.term must be a non-negative integer');
    const replicasets = arr(view['replicasets'], 'view.replicasets').map((r, i) => {
      const o = rec(r, `view.replicasets[${i}]`);
      return {
        name: s(o['name'], 'name'),
        master: ns(o['master'], 'master'),
        instances: arr(o['instances'], 'instances').map((x) => {
          const io = rec(x, 'instance');
          const problem = io['problem'] === undefined ? {} : { problem: s(io['problem'], 'problem') };
          const diverged = io['diverged'] === undefined ? {} : { diverged: divergence(io['diverged']) };
          return { pod: s(io['pod'], 'pod'), role: oneOf(io['role'], ROLES, 'role'), healthy: io['healthy'] === true, lag: nn(io['lag'], 'lag'), ...problem, ...diverged };
        }),
      };
    });
    const rollouts = arr(view['rollouts'], 'view.rollouts').map((r) => {
      const o = rec(r, 'rollout');
      return { replicaset: s(o['replicaset'], 'replicaset'), phase: oneOf(o['phase'], PHASES, 'phase'), next: ns(o['next'], 'next'), reason: s(o['reason'], 'reason') };
    });
    const t = rec(v['topology'], 'topology');
    const topology: TarantoolTopology = {
      cluster: s(t['cluster'], 'topology.cluster'),
      namespace: s(t['namespace'], 'topology.namespace'),
      replicasets: arr(t['replicasets'], 'topology.replicasets').map((r) => {
        const o = rec(r, 'topology replica set');
        return {
          name: s(o['name'], 'name'),
          uuid: s(o['uuid'], 'uuid'),
          master: ns(o['master'], 'master'),
          instances: arr(o['instances'], 'instances').map((x) => {
            const io = rec(x, 'topology instance');
            return { pod: s(io['pod'], 'pod'), uuid: s(io['uuid'], 'uuid'), uri: ns(io['uri'], 'uri'), master: io['master'] === true };
          }),
        };
      }),
    };
    return { view: { term, coordinator: s(view['coordinator'], 'view.coordinator'), replicasets, rollouts }, topology };
  } catch (err) {
    if (err instanceof BadView) throw new Error(`invalid topology push: ${err.message}`);
    throw err;
  }
}
