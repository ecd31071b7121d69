import { upstreamCondition } from './divergence.js';
import { seconds } from './format.js';
import type {
  ObservedInstance,
  ObservedReplicaSet,
  PersistedReplicaSet,
  ReplicationConfig,
  Timings,
  Vclock,
} from './model.js';

// Membership arithmetic and per-instance predicates shared by every planner.

/** replication_synchro_quorum for `members` members: a strict majority. */
export const majority = (members: number): number => Math.floor(members / 2) + 1;

/**
 * How many members' vclocks a promotion must compare so that it sees every acknowledged write:
 * any set of `ackQuorum` acknowledgers and this set intersect, since ackQuorum + electionQuorum =
 * members + 1. A master with a lower quorum than the majority (not yet raised) needs more.
 */
export function electionQuorum(members: number, ackQuorum: number | null = null): number {
  if (members === 0) return 0;
  const acks = Math.max(1, Math.min(majority(members), ackQuorum ?? majority(members)));
  return members - acks + 1;
}

export function emptyReplicaSet(): PersistedReplicaSet {
  return { master: null, members: [], expelled: [], quarantined: [], switchover: null, rollout: null, masterQuorum: null, repairs: [] };
}

export function instanceOf(rs: ObservedReplicaSet, pod: string | null): ObservedInstance | undefined {
  return pod === null ? undefined : rs.instances.find((i) => i.pod === pod);
}

export const isMember = (state: PersistedReplicaSet, pod: string): boolean => state.members.some((m) => m.pod === pod);

export const isQuarantined = (state: PersistedReplicaSet, pod: string): boolean =>
  state.quarantined.some((q) => q.pod === pod);

/** The replication every member should have: all members out of quarantine that have an address. */
export function desiredReplication(rs: ObservedReplicaSet, state: PersistedReplicaSet): ReplicationConfig {
  const replication = state.members
    .filter((m) => !isQuarantined(state, m.pod))
    .map((m) => instanceOf(rs, m.pod))
    .filter((i): i is ObservedInstance => i !== undefined && i.podExists && i.uri !== null)
    .map((i) => i.uri as string)
    .sort();
  return { replication, synchroQuorum: majority(state.members.length) };
}

export function sameReplication(observed: readonly string[], desired: readonly string[]): boolean {
  if (observed.length !== desired.length) return false;
  const sorted = [...observed].sort();
  return sorted.every((uri, i) => uri === desired[i]);
}

/**
 * The vclock of an instance whose word counts right now: its agent answers the coordinator, the mesh
 * majority sees it, and its Tarantool is configured and alive. null otherwise.
 */
export function liveVclock(inst: ObservedInstance | undefined): Vclock | null {
  if (!inst || !inst.podExists || !inst.agentReachable || inst.unreachableSinceMs !== null) return null;
  const t = inst.tarantool;
  if (!t || !t.alive || !t.configured || t.vclock === null) return null;
  return t.vclock;
}

/** Tarantool is running and writable (whatever the persisted state says). */
export const isWritable = (inst: ObservedInstance): boolean =>
  inst.podExists && inst.tarantool !== null && inst.tarantool.alive && !inst.tarantool.ro;

/** Why `inst` is not a healthy master / replica right now; null when it is. */
export function healthProblem(
  inst: ObservedInstance | undefined,
  role: 'master' | 'replica',
  timings: Timings,
): string | null {
  if (!inst || !inst.podExists) return `${inst?.pod ?? 'the pod'} does not exist`;
  const { pod } = inst;
  if (inst.deleting) return `${pod} is terminating`;
  if (!inst.agentReachable) return `the agent of ${pod} is unreachable`;
  if (inst.unreachableSinceMs !== null) return `${pod} is cut off from the mesh majority`;
  const t = inst.tarantool;
  if (!t || !t.alive) return `the Tarantool of ${pod} does not answer`;
  if (!t.configured) return `${pod} is not configured yet`;
  if (t.status !== 'running') return `${pod} is ${t.status}`;
  if (role === 'master' && t.ro) return `master ${pod} is read-only`;
  if (role === 'replica') {
    if (!t.ro) return `replica ${pod} is writable`;
    if (!t.upstreamOk) {
      const conflict = t.upstreams.find((u) => upstreamCondition(u) === 'diverged');
      if (conflict) return `${pod} diverged: an upstream stopped on a row that conflicts with its data (${conflict.message ?? ''})`;
      const stopped = t.upstreams.find((u) => u.status !== 'follow' && u.message !== null);
      return `${pod} is not following its master${stopped ? ` (upstream ${stopped.status}: ${stopped.message ?? ''})` : ''}`;
    }
    if (t.lagMs === null || t.lagMs > timings.maxHealthyLagMs) {
      const lag = t.lagMs === null ? 'an unknown time' : seconds(t.lagMs);
      return `${pod} lags ${lag} behind (bound ${seconds(timings.maxHealthyLagMs)})`;
    }
  }
  if (!inst.podReady) return `${pod} is not Ready`;
  return null;
}
