// What the coordinator publishes after each round, pure: the cluster view every agent serves in
// /status (so it is the same from any pod), and the topology handed to Tarantool's on_topology
// hooks (SPEC §3: every replica set, its instances' UUIDs and URIs, its master). The topology holds
// only what a router needs, so health and lag changes do not wake the hooks.
import { replicasetUuid } from '../../common/identity.js';
import { DIVERGENCE_REPAIRS, type InstanceRole, type RolloutPhase, type StatusDivergence, type StatusReplicaSet, type StatusSharding } from '../../common/status.js';
import { divergedUpstream } from '../decide/divergence.js';
import { healthProblem, instanceOf } from '../decide/members.js';
import type { ObservedCluster, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, PersistedState, Timings } from '../decide/model.js';
import type { ReconcileResult } from '../decide/reconcile.js';
import type { JsonObject } from './mesh-protocol.js';
import { clusterRoles, replicaSetRole } from '../decide/sharding-plan.js';
import { SHARDING_ROLES, type ShardingRole } from '../decide/sharding.js';
import type { ShardedView, ShardStorage } from '../instance/native-config.js';

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
  /** A sharded cluster (SPEC §4b); absent when no replica set has a role. */
  sharding?: StatusSharding;
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
  /** A sharded cluster (SPEC §4b): the role of every replica set that has one. Absent: none has. */
  roles?: Record<string, ShardingRole>;
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

function routerProblem(i: ObservedInstance): string | null {
  const t = i.tarantool;
  if (!i.podExists || !t?.alive) return `router ${i.pod}'s Tarantool does not answer`;
  if (!t.configured) return `router ${i.pod} is not configured yet`;
  if (t.ro) return `router ${i.pod} is read-only`;
  return null;
}

export function buildClusterView(
  observed: ObservedCluster,
  persisted: PersistedState,
  report: ReconcileResult['replicasets'],
  roles: ReadonlyMap<string, InstanceRole>,
  timings: Timings,
  coordinator: string,
  shardingReason = '',
): ClusterView {
  const shardRoles = clusterRoles(observed);
  const replicasets: StatusReplicaSet[] = observed.replicasets.map((rs) => {
    const state = persisted.replicasets[rs.name];
    const master = state?.master ?? null;
    const members = new Set(state?.members.map((m) => m.pod) ?? []);
    const router = shardRoles[rs.name] === 'router';
    const instances = rs.instances
      .filter((i) => i.podExists || members.has(i.pod))
      .map((i) => {
        // A router is nobody's member (SPEC §4b): healthy when it runs configured and writable.
        const problem = router
          ? routerProblem(i)
          : members.has(i.pod)
            ? healthProblem(i, i.pod === master ? 'master' : 'replica', timings)
            : `${i.pod} is not a member yet`;
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
  const sharding = shardingView(observed, persisted, shardingReason);
  return { term: persisted.term, coordinator, replicasets, rollouts, ...(sharding ? { sharding } : {}) };
}

/**
 * /status sharding (SPEC §4b): roles, each storage's buckets as its master reports them (another
 * member's report while the master's is missing: they replicate the same _bucket space), the
 * bootstrap record, and each configured router's view.
 */
export function shardingView(observed: ObservedCluster, persisted: PersistedState, reason: string): StatusSharding | undefined {
  const roles = clusterRoles(observed);
  const withRole = observed.replicasets.filter((rs) => roles[rs.name] !== null && roles[rs.name] !== undefined);
  if (withRole.length === 0) return undefined;
  const replicasets = withRole.map((rs) => {
    const role = roles[rs.name] as ShardingRole;
    const problems = replicaSetRole(rs).problems;
    const extra = problems.length > 0 ? { problems } : {};
    if (role === 'router') return { name: rs.name, role, buckets: null, ...extra };
    const master = persisted.replicasets[rs.name]?.master ?? null;
    const reports = rs.instances.filter((i) => i.tarantool?.vshard?.storage).sort((a, b) => (a.pod === master ? -1 : b.pod === master ? 1 : 0));
    const b = reports[0]?.tarantool?.vshard?.storage;
    return { name: rs.name, role, buckets: b ? { active: b.active, sending: b.sending, receiving: b.receiving, garbage: b.garbage } : null, ...extra };
  });
  const routers = withRole
    .filter((rs) => roles[rs.name] === 'router')
    .flatMap((rs) => rs.instances)
    .flatMap((i) => {
      const r = i.tarantool?.vshard?.router;
      return r ? [{ pod: i.pod, masters: { ...r.masters }, unknown: r.unknown, unreachable: r.unreachable }] : [];
    });
  const b = persisted.sharding?.bootstrap ?? null;
  const bootstrap = b
    ? { state: b.state, how: b.how, by: b.by, atMs: b.atMs, reason }
    : { state: 'waiting' as const, how: null, by: null, atMs: null, reason };
  return { replicasets, bootstrap, routers };
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
  const roles: Record<string, ShardingRole> = {};
  for (const [name, role] of Object.entries(clusterRoles(observed))) if (role !== null) roles[name] = role;
  return { cluster, namespace, replicasets, ...(Object.keys(roles).length > 0 ? { roles } : {}) };
}

/**
 * The sharded view one instance's config is rendered with (native-config.ts), from the published
 * topology: its replica set's role and every storage replica set with its members' addresses. null:
 * its replica set has no role. A member whose pod is gone keeps the address `known` had for it, so a
 * restarting pod does not reload every instance of the cluster twice.
 */
export function shardedViewFor(t: TarantoolTopology, replicaset: string, known: ShardedView | null): ShardedView | null {
  const role = t.roles?.[replicaset];
  if (role === undefined) return null;
  const storages: ShardStorage[] = [];
  for (const rs of t.replicasets) {
    if (t.roles?.[rs.name] !== 'storage') continue;
    const before = known?.storages.find((s) => s.name === rs.name)?.instances ?? {};
    const instances: ShardStorage['instances'] = {};
    for (const i of rs.instances) {
      const uri = i.uri ?? before[i.pod]?.uri ?? null;
      if (uri !== null) instances[i.pod] = { uuid: i.uuid, uri };
    }
    if (Object.keys(instances).length > 0) storages.push({ name: rs.name, uuid: rs.uuid, instances });
  }
  storages.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { role, storages };
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

const count = (v: unknown, where: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BadView(`${where} must be a non-negative integer`);
  return v;
};

function decodeSharding(v: unknown): StatusSharding {
  const o = rec(v, 'view.sharding');
  const replicasets = arr(o['replicasets'], 'sharding.replicasets').map((x) => {
    const r = rec(x, 'sharding replica set');
    const b = r['buckets'] === null ? null : rec(r['buckets'], 'sharding.buckets');
    const problems = r['problems'] === undefined ? {} : { problems: arr(r['problems'], 'sharding.problems').map((x) => s(x, 'sharding.problems')) };
    return {
      ...problems,
      name: s(r['name'], 'sharding.name'),
      role: oneOf(r['role'], SHARDING_ROLES, 'sharding.role'),
      buckets: b === null ? null : { active: count(b['active'], 'active'), sending: count(b['sending'], 'sending'), receiving: count(b['receiving'], 'receiving'), garbage: count(b['garbage'], 'garbage') },
    };
  });
  const b = rec(o['bootstrap'], 'sharding.bootstrap');
  const bootstrap = {
    state: oneOf(b['state'], ['waiting', 'requested', 'done'] as const, 'bootstrap.state'),
    how: b['how'] === null ? null : oneOf(b['how'], ['bootstrapped', 'found'] as const, 'bootstrap.how'),
    by: ns(b['by'], 'bootstrap.by'),
    atMs: nn(b['atMs'], 'bootstrap.atMs'),
    reason: s(b['reason'], 'bootstrap.reason'),
  };
  const routers = arr(o['routers'], 'sharding.routers').map((x) => {
    const r = rec(x, 'sharding router');
    const masters: Record<string, string | null> = {};
    for (const [name, m] of Object.entries(rec(r['masters'], 'router.masters'))) masters[name] = ns(m, 'router.masters');
    return { pod: s(r['pod'], 'router.pod'), masters, unknown: count(r['unknown'], 'router.unknown'), unreachable: count(r['unreachable'], 'router.unreachable') };
  });
  return { replicasets, bootstrap, routers };
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
    if (t['roles'] !== undefined) {
      const roles: Record<string, ShardingRole> = {};
      for (const [name, role] of Object.entries(rec(t['roles'], 'topology.roles'))) roles[name] = oneOf(role, SHARDING_ROLES, 'topology.roles');
      topology.roles = roles;
    }
    const sharding = view['sharding'] === undefined ? {} : { sharding: decodeSharding(view['sharding']) };
    return { view: { term, coordinator: s(view['coordinator'], 'view.coordinator'), replicasets, rollouts, ...sharding }, topology };
  } catch (err) {
    if (err instanceof BadView) throw new Error(`invalid topology push: ${err.message}`);
    throw err;
  }
}
