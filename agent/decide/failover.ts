import { seconds } from './format.js';
import {
  desiredReplication,
  electionQuorum,
  instanceOf,
  isQuarantined,
  isWritable,
  liveVclock,
} from './members.js';
import type { PlannedAction, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, QuarantinedMember, Timings, Vclock } from './model.js';
import { note, type Step } from './step.js';
import { byGreatestVclock, covers, dominates, formatVclock } from '../tarantool/vclock.js';

// Failover: detect a dead or cut-off master, choose the replica that has every acknowledged write,
// promote it under a new term. Also the two milder cases of "no writable master": none elected yet,
// and a master that is alive but read-only (it fenced itself, or restarted).

export interface MasterFailure {
  /** up: nothing wrong; suspect: something wrong, not for long enough yet; failed: replace it. */
  verdict: 'up' | 'suspect' | 'failed';
  reason: string;
}

/** Failed = cut off from the mesh majority, or its Tarantool silent, continuously for the failover timeout. */
export function detectMasterFailure(rs: ObservedReplicaSet, master: string, now: number, timings: Timings): MasterFailure {
  const inst = instanceOf(rs, master);
  if (!inst) {
    return { verdict: 'suspect', reason: `master ${master} is not in the observation (the observer must report every member)` };
  }
  const symptoms: Array<{ ms: number; what: string }> = [];
  if (inst.unreachableSinceMs !== null) symptoms.push({ ms: now - inst.unreachableSinceMs, what: 'unreachable from the mesh majority' });
  if (inst.tarantoolDownSinceMs !== null) symptoms.push({ ms: now - inst.tarantoolDownSinceMs, what: 'silent (its Tarantool does not answer)' });
  const worst = symptoms.sort((a, b) => b.ms - a.ms)[0];
  if (!worst) return { verdict: 'up', reason: `master ${master} is up` };
  if (worst.ms >= timings.failoverTimeoutMs) {
    return { verdict: 'failed', reason: `master ${master} ${worst.what} for ${seconds(worst.ms)}` };
  }
  return {
    verdict: 'suspect',
    reason: `master ${master} ${worst.what} for ${seconds(worst.ms)} (failover at ${seconds(timings.failoverTimeoutMs)})`,
  };
}

interface Voter {
  pod: string;
  ordinal: number;
  vclock: Vclock;
  quarantined: boolean;
  /** Why it may not be promoted even if it is the best (null = it may). */
  ineligible: string | null;
}

export type CandidateChoice = { pod: string; reason: string } | { pod: null; reason: string };

/**
 * The replica to promote instead of `exclude` (the failed master; null when there is none): among
 * the members whose word counts now (voters), the one with the greatest vclock. Refuses when fewer
 * members than the election quorum answer (an acknowledged write could be on the silent ones), and
 * never returns a replica that some voter is ahead of. A quarantined member is preferred against
 * only when it has every row every voter has. `to` restricts the choice to one pod.
 */
export function chooseCandidate(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  exclude: string | null,
  to?: string,
  /** `exclude` still votes with this vclock (what it holds for sure) but may not be promoted. */
  excludedVotes?: { vclock: Vclock; ineligible: string },
): CandidateChoice {
  const voters: Voter[] = [];
  const gone = instanceOf(rs, exclude ?? '');
  if (excludedVotes && gone && exclude !== null) {
    voters.push({ pod: exclude, ordinal: gone.ordinal, vclock: excludedVotes.vclock, quarantined: false, ineligible: excludedVotes.ineligible });
  }
  for (const member of state.members) {
    if (member.pod === exclude) continue;
    const inst = instanceOf(rs, member.pod);
    const vclock = liveVclock(inst);
    if (!inst || !vclock) continue;
    const ineligible = inst.deleting
      ? 'its pod is terminating'
      : inst.ordinal >= rs.specReplicas
        ? `ordinal ${inst.ordinal} is being scaled away`
        : null;
    voters.push({ pod: member.pod, ordinal: inst.ordinal, vclock, quarantined: isQuarantined(state, member.pod), ineligible });
  }
  const needed = electionQuorum(state.members.length, state.masterQuorum);
  if (voters.length < needed) {
    return {
      pod: null,
      reason: `only ${voters.length} of ${state.members.length} members answer, ${needed} needed to be sure no acknowledged write is missed`,
    };
  }
  const eligible = voters.filter((v) => v.ineligible === null && (to === undefined || v.pod === to)).sort(byGreatestVclock);
  // Which voter's rows `c` would lose. Among members that followed the same master, clocks are
  // ordered and "not behind" suffices; a quarantined member's rows cannot be told apart (stale
  // leftovers, or acknowledged writes it kept pulling), so across quarantine `c` must have them all.
  const wouldLose = (c: Voter): Voter | undefined =>
    voters.find((v) => v !== c && (v.quarantined || c.quarantined ? !covers(c.vclock, v.vclock) : dominates(v.vclock, c.vclock)));
  const best = eligible.find((c) => wouldLose(c) === undefined);
  if (!best) {
    const top = eligible[0];
    if (!top) {
      return { pod: null, reason: to === undefined ? 'no answering member may be promoted' : `${to} is not an answering member that may be promoted` };
    }
    const other = wouldLose(top);
    const detail = other ? `${other.pod} ${formatVclock(other.vclock)} has rows ${top.pod} ${formatVclock(top.vclock)} lacks` : `${top.pod} cannot be promoted`;
    return { pod: null, reason: `${detail}${other?.ineligible ? ` and cannot be promoted: ${other.ineligible}` : ''}` };
  }
  return { pod: best.pod, reason: `${best.pod} has the greatest vclock ${formatVclock(best.vclock)} of ${voters.length} answering members` };
}

/** Fence every writable instance except `keep` (before anything is promoted: no two writers). */
export function fenceOthers(rs: ObservedReplicaSet, keep: string | null, why: string): PlannedAction[] {
  return rs.instances
    .filter((i) => i.pod !== keep && isWritable(i))
    .map((i) => ({ kind: 'fence', replicaset: rs.name, pod: i.pod, reason: `fencing ${i.pod}: ${why}` }) as const);
}

/**
 * Make `to` the master instead of `from`: persisted first (under a new term), then every other writer
 * fenced, the replicas reconfigured without the quarantined, then `to` promoted. `from` and every
 * member `to` does not cover are quarantined: they may hold writes `to` never received.
 */
export function promotion(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  from: string | null,
  to: string,
  reason: string,
  now: number,
): Step {
  // Whoever may hold rows `to` lacks stays out of everyone's replication until compared with it:
  // the old master, and every member that is not a live voter `to` covers (down, cut off, or ahead).
  const newVclock = liveVclock(instanceOf(rs, to));
  const suspect = (pod: string): QuarantinedMember['why'] | null => {
    if (pod === to || isQuarantined(state, pod)) return null;
    if (pod === from) return 'old-master';
    const theirs = liveVclock(instanceOf(rs, pod));
    return newVclock !== null && theirs !== null && covers(newVclock, theirs) ? null : 'missed-master-change';
  };
  const quarantined: QuarantinedMember[] = [
    ...state.quarantined.filter((q) => q.pod !== to),
    ...state.members.flatMap((m) => {
      const why = suspect(m.pod);
      return why === null ? [] : [{ pod: m.pod, why, sinceMs: now, rebootstrapRequestedAtMs: null }];
    }),
  ];
  const config = desiredReplication(rs, { ...state, quarantined });
  const next: PersistedReplicaSet = { ...state, master: to, switchover: null, quarantined, masterQuorum: config.synchroQuorum };
  // The replicas stop pulling from the quarantined first, or they could relay its rows to `to`.
  const reconfigure: PlannedAction[] = next.members
    .filter((m) => m.pod !== to && !isQuarantined(next, m.pod) && liveVclock(instanceOf(rs, m.pod)) !== null)
    .map((m) => ({
      kind: 'reconfigure',
      replicaset: rs.name,
      pod: m.pod,
      reason: `${m.pod} stops replicating from quarantined ${quarantined.map((q) => q.pod).join(', ') || 'nobody'} before ${to} is promoted`,
      ...config,
    }));
  const commands: PlannedAction[] = [
    { kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Promote', reason },
    ...fenceOthers(rs, to, `${to} becomes master`),
    ...reconfigure,
    { kind: 'promote', replicaset: rs.name, pod: to, reason, ...config },
  ];
  return { state: next, commands, bumpTerm: true, reason, final: false };
}

/** Replace a failed master (SPEC §5 Failover). null when the master is fine or there is none. */
export function planFailover(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings): Step | null {
  const master = state.master;
  if (master === null) return null;
  const failure = detectMasterFailure(rs, master, now, timings);
  if (failure.verdict === 'up') return null;
  if (failure.verdict === 'suspect') return note(state, failure.reason);
  if (rs.failover === 'manual') {
    return note(state, `${failure.reason}; failover is manual: no promotion until a switchover is requested`);
  }
  const choice = chooseCandidate(rs, state, master);
  if (choice.pod === null) return note(state, `${failure.reason}; no promotion: ${choice.reason}`);
  return promotion(rs, state, master, choice.pod, `promoting ${choice.pod}: ${failure.reason}; ${choice.reason}`, now);
}

/**
 * Tarantool 3: a writable master whose synchronous queue nobody owns (its own claim at bootstrap gave
 * up before enough replicas were connected) cannot commit is_sync writes; once a quorum of replicas
 * follows it, promote it again, which claims the queue. null when nothing is to be done.
 */
function unclaimedQueue(rs: ObservedReplicaSet, state: PersistedReplicaSet, master: string): Step | null {
  const t = instanceOf(rs, master)?.tarantool;
  if (!t || t.ro || t.status !== 'running' || !t.synchro || t.id === null || t.synchro.owner === t.id) return null;
  const followers = state.members.filter((m) => m.pod !== master && instanceOf(rs, m.pod)?.tarantool?.upstreamOk === true).length;
  const quorum = state.masterQuorum ?? 1;
  if (followers + 1 < quorum) {
    return note(state, `master ${master} does not own the synchronous queue yet (owner ${t.synchro.owner}): ${followers + 1} of the ${quorum} instances its claim needs follow it`);
  }
  const reason = `master ${master} is writable but does not own the synchronous queue (owner ${t.synchro.owner}, term ${t.synchro.term}): claiming it`;
  return { state, commands: [{ kind: 'promote', replicaset: rs.name, pod: master, reason, ...desiredReplication(rs, state) }], bumpTerm: false, reason, final: false };
}

/**
 * No writable master although no failover is due: elect one when none is recorded, or make the
 * recorded master writable again when it is alive, read-only and nobody is ahead of it (it fenced
 * itself during a partition that healed in time, or it restarted).
 */
export function planMasterRecovery(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  now: number,
  busy: ReadonlySet<string> = new Set(),
): Step | null {
  // busy: a master promoted earlier in this round is still observed read-only; leave it be.
  if (state.switchover !== null || state.members.length === 0 || (state.master !== null && busy.has(state.master))) return null;
  if (state.master === null) {
    const choice = chooseCandidate(rs, state, null);
    if (choice.pod === null) return note(state, `no master recorded; cannot elect one: ${choice.reason}`);
    return promotion(rs, state, null, choice.pod, `electing ${choice.pod}: no master recorded; ${choice.reason}`, now);
  }
  const master = state.master;
  const inst = instanceOf(rs, master);
  const t = inst?.tarantool;
  if (isQuarantined(state, master)) return null;
  // Restarted on data Tarantool cannot serve from in place: never made writable, replaced. With its
  // own unconfirmed transactions it still votes with the rows it committed (none of the others was
  // ever acknowledged), so a replica set down to it and one replica can fail over.
  const waiting = t?.alive === true && t.status === 'unconfigured';
  let fallback = '';
  if (t?.hazard && t.ro && (waiting || t.status === 'running')) {
    const why = `master ${master} restarted and ${t.hazard.reason}`;
    const from = t.hazard.uncommittedFrom;
    const committed = from && t.vclock ? { ...t.vclock, [from.id]: Math.min(t.vclock[from.id] ?? 0, from.lsn - 1) } : undefined;
    const choice = chooseCandidate(rs, state, master, undefined, committed && { vclock: committed, ineligible: 'it cannot serve writes in place' });
    if (choice.pod !== null) return promotion(rs, state, master, choice.pod, `promoting ${choice.pod}: ${why}; ${choice.reason}`, now);
    // Waiting would stop writes for good when the others need a writable master to rejoin from (a
    // chaos run deadlocked so): it is made writable in place after all, as before.
    if (t.hazard.kind === 'unrecoverable-snapshot' || waiting) return note(state, `${why}; cannot elect another: ${choice.reason}`);
    fallback = `; nobody else can be elected (${choice.reason}), so despite ${why}`;
  }
  const vclock = liveVclock(inst);
  if (!inst || !t || !vclock) return null;
  const claim = unclaimedQueue(rs, state, master);
  if (claim) return claim;
  if (!t.ro || t.status !== 'running') return null;
  const ahead = state.members
    .filter((m) => m.pod !== master && !isQuarantined(state, m.pod))
    .map((m) => ({ pod: m.pod, vclock: liveVclock(instanceOf(rs, m.pod)) }))
    .find((v) => v.vclock !== null && dominates(v.vclock, vclock));
  if (!ahead) return recoveryInPlace(rs, state, master, vclock, fallback, now);
  const choice = chooseCandidate(rs, state, master);
  const why = `master ${master} is read-only and ${ahead.pod} is ahead of it`;
  if (choice.pod === null) return note(state, `${why}; cannot elect another: ${choice.reason}`);
  return promotion(rs, state, master, choice.pod, `promoting ${choice.pod}: ${why}; ${choice.reason}`, now);
}

/** What a member's data holds as far as the coordinator knows: live, or read offline before box.cfg. */
function knownVclock(inst: ObservedInstance | undefined): Vclock | null {
  const live = liveVclock(inst);
  if (live !== null || !inst?.podExists || !inst.agentReachable || inst.unreachableSinceMs !== null) return live;
  const t = inst.tarantool;
  return t?.alive && !t.configured && t.vclock !== null ? t.vclock : null;
}

/**
 * The recorded master, alive and read-only with nobody known to be ahead, made writable again. Only
 * when an election quorum of members (itself included) has said what its data holds: an
 * acknowledged write is on a synchronous quorum, which that many members always meet, and the
 * master may have lost its WAL's tail (a machine crash) that a silent replica holds. Members it did
 * not compare with (silent, or not covered by it) are quarantined: when they come back they are
 * compared with it before they rejoin (admission.ts), never just added to replication.
 */
function recoveryInPlace(rs: ObservedReplicaSet, state: PersistedReplicaSet, master: string, vclock: Vclock, fallback: string, now: number): Step | null {
  // A member scaled away whose pod is gone is not waited for: it can only come back by a scale-up,
  // which the user did not ask for (it is expelled once the master is writable).
  const staying = state.members.filter((m) => {
    const inst = instanceOf(rs, m.pod);
    return !inst || inst.podExists || inst.ordinal < rs.specReplicas;
  });
  const known = staying.map((m) => ({ pod: m.pod, vclock: m.pod === master ? vclock : knownVclock(instanceOf(rs, m.pod)) }));
  const answering = known.filter((k) => k.vclock !== null).length;
  const needed = electionQuorum(staying.length, state.masterQuorum);
  if (answering < needed) {
    return note(state, `master ${master} is alive but read-only; only ${answering} of ${staying.length} members say what their data holds, ${needed} needed to be sure none is ahead of it: waiting`);
  }
  const unchecked = known.filter((k) => k.pod !== master && !isQuarantined(state, k.pod) && (k.vclock === null || !covers(vclock, k.vclock)));
  const quarantined: QuarantinedMember[] = [
    ...state.quarantined,
    ...unchecked.map((k) => ({ pod: k.pod, why: 'missed-master-change' as const, sinceMs: now, rebootstrapRequestedAtMs: null })),
  ];
  const next: PersistedReplicaSet = unchecked.length === 0 ? state : { ...state, quarantined };
  const held = unchecked.length === 0 ? '' : `; ${unchecked.map((k) => k.pod).join(', ')} quarantined until compared with it`;
  const reason = `master ${master} is alive but read-only and none of ${answering} of ${staying.length} members is ahead of it ${formatVclock(vclock)}${fallback}: making it writable${held}`;
  const commands: PlannedAction[] = [
    ...fenceOthers(rs, master, `${master} is the master`),
    { kind: 'promote', replicaset: rs.name, pod: master, reason, ...desiredReplication(rs, next) },
  ];
  return { state: next, commands, bumpTerm: false, reason, final: false };
}
