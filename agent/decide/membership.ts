import { neverBootstrapped } from './bootstrap.js';
import { podList } from './format.js';
import {
  desiredReplication,
  healthProblem,
  instanceOf,
  isMember,
  isQuarantined,
  isWritable,
  majority,
  sameReplication,
} from './members.js';
import type { PlannedAction, Member, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, Timings } from './model.js';
import { rebootstrapBlocker } from './rebootstraps.js';
import type { Step } from './step.js';
import { hasRows } from '../tarantool/vclock.js';

// Join, expel, (re)configuration and the synchronous quorum of an established replica set (SPEC §5).

/** A pod's ordinal, from the observation or, for a pod that is gone, from its name `<statefulset>-<n>`. */
export function ordinalOf(rs: ObservedReplicaSet, pod: string): number {
  const inst = instanceOf(rs, pod);
  if (inst) return inst.ordinal;
  const n = Number(pod.slice(rs.name.length + 1));
  return Number.isInteger(n) ? n : Number.POSITIVE_INFINITY;
}

const step = (state: PersistedReplicaSet, commands: PlannedAction[], reasons: string[], before?: PersistedReplicaSet): Step | null =>
  commands.length === 0 && reasons.length === 0 && (before === undefined || before === state)
    ? null
    : { state, commands, bumpTerm: false, reason: reasons.join('; '), final: false };

/**
 * Keep what later decisions need from the observation: each member's box.info.id (the vclock
 * component it writes) and the synchro quorum the master really runs with.
 */
export function recordObserved(rs: ObservedReplicaSet, state: PersistedReplicaSet): PersistedReplicaSet {
  let changed = false;
  const members = state.members.map((m): Member => {
    const id = instanceOf(rs, m.pod)?.tarantool?.id ?? null;
    if (id === null || id === m.id) return m;
    changed = true;
    return { ...m, id };
  });
  const t = instanceOf(rs, state.master)?.tarantool;
  const masterQuorum = t?.configured && t.alive && t.synchroQuorum !== null ? t.synchroQuorum : state.masterQuorum;
  if (masterQuorum !== state.masterQuorum) changed = true;
  return changed ? { ...state, members, masterQuorum } : state;
}

/**
 * Expel on a real scale-down only: the ordinal is at or beyond spec.replicas AND the pod is gone.
 * Never the master (a master in the way is handed over first, see reconcile).
 */
export function planExpels(rs: ObservedReplicaSet, state: PersistedReplicaSet, timings: Timings): Step | null {
  const leaving = state.members.filter((m) => {
    if (m.pod === state.master || ordinalOf(rs, m.pod) < rs.specReplicas) return false;
    const inst = instanceOf(rs, m.pod);
    return !inst || !inst.podExists;
  });
  if (leaving.length === 0) return null;
  const gone = new Set(leaving.map((m) => m.pod));
  // Shrinking lowers the number of vclocks a failover compares: only when every remaining member is
  // healthy (has what the leaving ones acknowledged), never in a degraded replica set.
  const problems = state.members
    .filter((m) => !gone.has(m.pod))
    .map((m) =>
      isQuarantined(state, m.pod)
        ? `${m.pod} is quarantined`
        : healthProblem(instanceOf(rs, m.pod), m.pod === state.master ? 'master' : 'replica', timings),
    )
    .filter((p): p is string => p !== null);
  if (problems.length > 0) {
    const reason = `not expelling ${podList([...gone])} yet: ${problems.join('; ')}`;
    return { state, commands: [], bumpTerm: false, reason, final: false };
  }
  const next: PersistedReplicaSet = {
    ...state,
    members: state.members.filter((m) => !gone.has(m.pod)),
    quarantined: state.quarantined.filter((q) => !gone.has(q.pod)),
    expelled: [...state.expelled.filter((e) => !gone.has(e.pod)), ...leaving.map((m) => ({ pod: m.pod, uuid: m.uuid }))],
  };
  const reason =
    `expelling ${podList([...gone])}: ${rs.name} is scaled to ${rs.specReplicas} and the pods are gone; ` +
    `synchro quorum ${majority(next.members.length)} of ${next.members.length}`;
  return step(next, [{ kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Expel', reason }], [reason]);
}

/** Delete expelled instances from the master's box.space._cluster; forget them once it has none. */
export function planExpelCleanup(rs: ObservedReplicaSet, state: PersistedReplicaSet): Step | null {
  const master = instanceOf(rs, state.master);
  const cluster = master?.tarantool?.clusterUuids ?? null;
  if (state.expelled.length === 0 || !master || !isWritable(master) || cluster === null) return null;
  const pending = state.expelled.filter((e) => cluster.includes(e.uuid));
  const commands: PlannedAction[] = pending.map((e) => ({
    kind: 'expel',
    replicaset: rs.name,
    pod: master.pod,
    expelledPod: e.pod,
    expelledUuid: e.uuid,
    reason: `deleting expelled ${e.pod} from ${master.pod}'s box.space._cluster`,
  }));
  const next = pending.length === state.expelled.length ? state : { ...state, expelled: pending };
  return step(next, commands, commands.map((c) => c.reason), state);
}

function joinable(rs: ObservedReplicaSet, state: PersistedReplicaSet, i: ObservedInstance): boolean {
  const t = i.tarantool;
  return (
    !isMember(state, i.pod) &&
    i.podExists &&
    !i.deleting &&
    i.ordinal < rs.specReplicas &&
    i.agentReachable &&
    i.unreachableSinceMs === null &&
    i.uri !== null &&
    t !== null &&
    t.alive &&
    t.vclock !== null &&
    t.status !== 'configuring'
  );
}

/**
 * One new instance per round joins as a replica of the writable master and becomes a member (every
 * member's replication and quorum follow through planReconfigure). One that arrives with data is
 * quarantined instead, to be compared with the master first (admission.ts).
 */
export function planJoin(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number): Step | null {
  const master = instanceOf(rs, state.master);
  if (!master || !isWritable(master) || master.tarantool?.status !== 'running') return null;
  const candidate = rs.instances.filter((i) => joinable(rs, state, i)).sort((a, b) => a.ordinal - b.ordinal)[0];
  const t = candidate?.tarantool;
  if (!candidate || !t || t.vclock === null) return null;
  const member: Member = { pod: candidate.pod, uuid: candidate.instanceUuid, id: t.id };
  const withData = t.configured || hasRows(t.vclock);
  const next: PersistedReplicaSet = {
    ...state,
    members: [...state.members, member],
    expelled: state.expelled.filter((e) => e.pod !== candidate.pod),
    quarantined: withData
      ? [...state.quarantined, { pod: candidate.pod, why: 'arrived-with-data', sinceMs: now, rebootstrapRequestedAtMs: null }]
      : state.quarantined,
  };
  const config = desiredReplication(rs, next);
  const quorum = `synchro quorum ${config.synchroQuorum} of ${next.members.length}`;
  // The master acknowledges with the new quorum before the new member can be counted as a voter.
  const raiseQuorum: PlannedAction = {
    kind: 'reconfigure',
    replicaset: rs.name,
    pod: master.pod,
    reason: `raising master ${master.pod}'s synchro quorum to ${config.synchroQuorum} of ${next.members.length} before ${candidate.pod} joins`,
    gate: true,
    ...config,
  };
  if (withData) {
    const reason = `${candidate.pod} joins ${rs.name} with data of an earlier life: quarantined until compared with ${master.pod}; ${quorum}`;
    return step(next, [{ kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Join', reason }, raiseQuorum], [reason]);
  }
  const reason = `${candidate.pod} joins ${rs.name} as a replica of ${master.pod}; ${quorum}`;
  return step(
    next,
    [
      { kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Join', reason },
      raiseQuorum,
      { kind: 'joinReplica', replicaset: rs.name, pod: candidate.pod, reason, ...config },
    ],
    [reason],
  );
}

/**
 * A member whose data its Tarantool cannot recover (box.cfg would kill it on every start): it joins
 * again from scratch, its files kept aside, from `from`, a writable master with the full quorum. The
 * recorded master waits for a failover instead (planMasterRecovery).
 */
function restartFromScratch(rs: ObservedReplicaSet, state: PersistedReplicaSet, pod: string, why: string, from: ObservedInstance | undefined): { commands: PlannedAction[]; reason: string } {
  if (pod === state.master) return { commands: [], reason: `not configuring master ${pod}: ${why}` };
  if (!from) return { commands: [], reason: `${pod} cannot start on its data (${why}): waiting for a writable master with the full synchro quorum to rebootstrap it from` };
  const reason = `${pod} cannot start on its data (${why}): rebootstrapping it from ${from.pod}, old data kept aside`;
  return {
    commands: [
      { kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Rebootstrap', reason },
      { kind: 'rebootstrap', replicaset: rs.name, pod, reason, ...desiredReplication(rs, state) },
    ],
    reason,
  };
}

/** Members whose Tarantool waits for its box.cfg (restarted pods; a lost bootstrap). */
export function planConfigure(rs: ObservedReplicaSet, state: PersistedReplicaSet, busy: ReadonlySet<string>, round: { now: number; timings: Timings; planned: readonly PlannedAction[] } | null = null): Step | null {
  const master = instanceOf(rs, state.master);
  const config = desiredReplication(rs, state);
  // An empty member joins from a writable master that already acknowledges with the full quorum.
  const masterQuorum = master?.tarantool?.synchroQuorum ?? 0;
  const joinFrom = master !== undefined && isWritable(master) && masterQuorum >= config.synchroQuorum;
  const commands: PlannedAction[] = [];
  const reasons: string[] = [];
  for (const m of state.members) {
    const i = instanceOf(rs, m.pod);
    const t = i?.tarantool;
    if (!i || !t || busy.has(m.pod) || isQuarantined(state, m.pod)) continue;
    if (!i.podExists || !i.agentReachable || i.uri === null || !t.alive || t.configured || t.status !== 'unconfigured') continue;
    if (t.vclock === null) {
      reasons.push(`waiting for ${m.pod} to report its data's vclock before configuring it`);
    } else if (t.hazard?.kind === 'unrecoverable-snapshot') {
      const blocker = round === null ? null : rebootstrapBlocker(state, m.pod, [...round.planned, ...commands], round.now, round.timings);
      if (blocker !== null && m.pod !== state.master) {
        reasons.push(`${m.pod} cannot start on its data (${t.hazard.reason}), to be rebootstrapped: ${blocker}`);
        continue;
      }
      const step = restartFromScratch(rs, state, m.pod, t.hazard.reason, joinFrom ? master : undefined);
      commands.push(...step.commands);
      reasons.push(step.reason);
    } else if (m.pod === state.master && neverBootstrapped(rs, state)) {
      const reason = `bootstrapping ${rs.name} with ${m.pod} again: it was chosen as master but never configured`;
      commands.push({ kind: 'bootstrapMaster', replicaset: rs.name, pod: m.pod, reason, replication: [i.uri], synchroQuorum: 1 });
      reasons.push(reason);
    } else if (!hasRows(t.vclock) && !joinFrom) {
      reasons.push(`${m.pod} has no data: waiting for a writable master with synchro quorum ${config.synchroQuorum} to join from`);
    } else {
      const role = m.pod === state.master ? 'read-only until it is checked' : 'a replica';
      const reason = `configuring ${m.pod} (restarted) as ${role}`;
      commands.push({ kind: 'joinReplica', replicaset: rs.name, pod: m.pod, reason, ...config });
      reasons.push(reason);
    }
  }
  return step(state, commands, reasons);
}

/** Bring every running member's replication and synchro quorum to what the membership says. */
export function planReconfigure(rs: ObservedReplicaSet, state: PersistedReplicaSet, busy: ReadonlySet<string>): Step | null {
  const config = desiredReplication(rs, state);
  const commands: PlannedAction[] = [];
  for (const m of state.members) {
    const i = instanceOf(rs, m.pod);
    const t = i?.tarantool;
    if (!i || !t || busy.has(m.pod) || isQuarantined(state, m.pod)) continue;
    if (!i.podExists || !i.agentReachable || !t.alive || !t.configured) continue;
    if (sameReplication(t.replication, config.replication) && t.synchroQuorum === config.synchroQuorum) continue;
    const reason =
      `reconfiguring ${m.pod}: replication [${config.replication.join(', ')}], ` +
      `synchro quorum ${config.synchroQuorum} of ${state.members.length}`;
    commands.push({ kind: 'reconfigure', replicaset: rs.name, pod: m.pod, reason, ...config });
  }
  return step(state, commands, commands.map((c) => c.reason));
}
