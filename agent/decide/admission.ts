import { mayBeReceiving } from './divergence.js';
import { desiredReplication, instanceOf, isWritable, liveVclock } from './members.js';
import type { PlannedAction, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, QuarantinedMember, Timings } from './model.js';
import { seconds } from './format.js';
import { rebootstrapBlocker } from './rebootstraps.js';
import { note, type Step } from './step.js';
import { aheadComponents, formatVclock, hasRows } from '../tarantool/vclock.js';

// Admission of an instance that holds data into a replica set's replication: a returning old
// master, or a pod that arrived with data of an earlier life. Tarantool 2.6 has no split-brain
// detection (a conflicting rejoin can take the master down), so its data is compared with the
// master's first; anything the master lacks means a rebootstrap with the old data kept aside.

export type AdmissionVerdict =
  | { verdict: 'wait'; reason: string }
  | { verdict: 'rejoin'; reason: string }
  | { verdict: 'rebootstrap'; reason: string };

/** Whether `inst` may re-enter replication next to the writable master `master` as it is. */
export function admissionVerdict(inst: ObservedInstance, master: ObservedInstance): AdmissionVerdict {
  const { pod } = inst;
  const mine = inst.tarantool?.vclock ?? null;
  if (!inst.agentReachable || !inst.tarantool?.alive || mine === null) {
    return { verdict: 'wait', reason: `waiting for ${pod} to report its vclock` };
  }
  if (isWritable(inst)) return { verdict: 'wait', reason: `${pod} is still writable: fencing it first` };
  const theirs = liveVclock(master);
  const masterId = master.tarantool?.id ?? null;
  if (!isWritable(master) || theirs === null || masterId === null) {
    return { verdict: 'wait', reason: `waiting for a writable master to compare ${pod} with` };
  }
  const hazard = inst.tarantool?.hazard;
  if (hazard?.kind === 'unrecoverable-snapshot') {
    return { verdict: 'rebootstrap', reason: `${pod} cannot start on its data (${hazard.reason}): rebootstrapping it, old data kept aside` };
  }
  const registered = master.tarantool?.clusterUuids?.includes(inst.instanceUuid) ?? true;
  if (!registered && hasRows(mine)) {
    return {
      verdict: 'rebootstrap',
      reason: `${pod} holds data but is not registered in ${master.pod}'s _cluster (expelled earlier): rebootstrapping it, old data kept aside`,
    };
  }
  // Rows of the master's own component can only come from the master, so holding more of them than
  // the master has means the master lost rows it once had (it restarted without its WAL's tail;
  // 2.6 rolled back rows it had confirmed): rejoined as is, the instance would skip the master's new
  // rows under those lsns and differ silently. Compared, unless the instance may still be pulling
  // them (from the master or through a relay): our view of the master may be a moment older.
  const own = String(masterId);
  const receiving = inst.tarantool !== null && mayBeReceiving(inst.tarantool);
  const ahead = aheadComponents(mine, theirs).filter((c) => !(receiving && String(c.id) === own));
  if (ahead.length > 0) {
    const detail = ahead.map((c) => `${c.id}: ${c.lsn} > ${c.other}`).join(', ');
    const clocks = `${pod} ${formatVclock(mine)}, ${master.pod} ${formatVclock(theirs)}`;
    const lost = ahead.some((c) => String(c.id) === own) ? ` (${master.pod}'s own component included: it may have lost rows it once had)` : '';
    return {
      verdict: 'rebootstrap',
      reason: `${pod} has writes ${master.pod} never received (${detail})${lost}, vclocks ${clocks}: rebootstrapping it, old data kept aside (the only record of those writes)`,
    };
  }
  return {
    verdict: 'rejoin',
    reason: `${pod} ${formatVclock(mine)} has nothing ${master.pod} ${formatVclock(theirs)} lacks: rejoining it as a replica`,
  };
}

/** Replication for `pod` itself while it is still out of everyone else's list. */
function replicationIncluding(rs: ObservedReplicaSet, state: PersistedReplicaSet, inst: ObservedInstance) {
  const config = desiredReplication(rs, state);
  const own = inst.uri !== null && !config.replication.includes(inst.uri) ? [inst.uri] : [];
  return { ...config, replication: [...config.replication, ...own].sort() };
}

function admitOne(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  entry: QuarantinedMember,
  master: ObservedInstance,
  now: number,
  timings: Timings,
  planned: readonly PlannedAction[],
): Step {
  const inst = instanceOf(rs, entry.pod);
  if (!inst || !inst.podExists) return note(state, `${entry.pod} (quarantined: ${entry.why}) is gone`);
  const verdict = admissionVerdict(inst, master);
  if (verdict.verdict === 'wait') return note(state, verdict.reason);
  if (verdict.verdict === 'rejoin') {
    const next = { ...state, quarantined: state.quarantined.filter((q) => q.pod !== entry.pod) };
    const kind = inst.tarantool?.configured ? 'rejoinAsReplica' : 'joinReplica';
    const commands: PlannedAction[] = [
      { kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Rejoin', reason: verdict.reason },
      { kind, replicaset: rs.name, pod: entry.pod, reason: verdict.reason, ...desiredReplication(rs, next) },
    ];
    return { state: next, commands, bumpTerm: false, reason: verdict.reason, final: false };
  }
  const last = entry.rebootstrapRequestedAtMs;
  if (last !== null && now - last < timings.rebootstrapRetryMs) {
    return note(state, `rebootstrap of ${entry.pod} requested ${seconds(now - last)} ago; waiting for it`);
  }
  const blocker = rebootstrapBlocker(state, entry.pod, planned, now, timings);
  if (blocker !== null) return note(state, `${verdict.reason.replace(/: rebootstrapping it, old data kept aside.*$/, '')}; to be rebootstrapped: ${blocker}`);
  const next = {
    ...state,
    quarantined: state.quarantined.map((q) => (q.pod === entry.pod ? { ...q, rebootstrapRequestedAtMs: now } : q)),
  };
  const commands: PlannedAction[] = [
    { kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Rebootstrap', reason: verdict.reason },
    { kind: 'rebootstrap', replicaset: rs.name, pod: entry.pod, reason: verdict.reason, ...replicationIncluding(rs, state, inst) },
  ];
  return { state: next, commands, bumpTerm: false, reason: verdict.reason, final: false };
}

/** Decide for every quarantined member that can be judged now. */
export function planAdmissions(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings, planned: readonly PlannedAction[] = []): Step | null {
  if (state.quarantined.length === 0) return null;
  const master = instanceOf(rs, state.master);
  if (!master || !isWritable(master)) return note(state, `quarantined ${state.quarantined.map((q) => q.pod).join(', ')}: waiting for a writable master`);
  let current = state;
  const commands: PlannedAction[] = [];
  const reasons: string[] = [];
  for (const entry of state.quarantined) {
    const step = admitOne(rs, current, entry, master, now, timings, [...planned, ...commands]);
    current = step.state;
    commands.push(...step.commands);
    reasons.push(step.reason);
  }
  return { state: current, commands, bumpTerm: false, reason: reasons.join('; '), final: false };
}
