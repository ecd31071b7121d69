import { assembleBatch } from './batch.js';
import { chooseCandidate, detectMasterFailure, promotion } from './failover.js';
import { seconds } from './format.js';
import { desiredReplication, healthProblem, instanceOf, isMember, isQuarantined, isWritable, liveVclock } from './members.js';
import type {
  Action,
  PlannedAction,
  ObservedCluster,
  ObservedReplicaSet,
  PersistedReplicaSet,
  PersistedState,
  Timings,
  Vclock,
} from './model.js';
import { note, type Step } from './step.js';
import { byGreatestVclock } from '../tarantool/vclock.js';

// Planned hand-over of the master role (SPEC §5 Switchover): old master read-only → candidate
// catches up to its vclock → new master recorded → candidate writable. Started on request
// (POST /switchover, /prestop) or by reconcile (a master that is leaving, a rollout).

export interface SwitchoverRequest {
  replicaset: string;
  /** The pod to hand over to; omitted = the healthy replica with the greatest vclock. */
  to?: string;
  /**
   * Hand over only if this pod is still the master (/prestop names its own pod): a request that
   * arrives after another path already moved the role must not move it on from the new master.
   */
  from?: string;
  /** Who asks, for the reasons: "POST /switchover", "/prestop of storage-0". */
  requestedBy?: string;
}

export type SwitchoverPlan =
  | { ok: true; from: string; to: string; actions: Action[]; nextPersisted: PersistedState; reason: string }
  /** retry: the obstacle is temporary (lag, a restart in progress): asking again later may succeed. */
  | { ok: false; retry: boolean; reason: string };

export type TargetChoice = { pod: string; reason: string } | { pod: null; retry: boolean; reason: string };

/** The healthy, caught-up replica to hand over to (`to` if given and fit). */
export function chooseSwitchoverTarget(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  timings: Timings,
  to?: string,
): TargetChoice {
  const master = state.master;
  if (to !== undefined) {
    if (to === master) return { pod: null, retry: false, reason: `${to} is already the master` };
    if (!isMember(state, to)) return { pod: null, retry: false, reason: `${to} is not a member of ${rs.name}` };
  }
  // Never the pod a rollout has just deleted (it is about to go away).
  const leaving = state.rollout?.inFlight?.pod;
  const considered = state.members.filter((m) => m.pod !== master && m.pod !== leaving && (to === undefined || m.pod === to));
  const problems: string[] = [];
  const healthy: Array<{ pod: string; ordinal: number; vclock: Vclock; upToDate: boolean }> = [];
  let transient = false;
  for (const m of considered) {
    const inst = instanceOf(rs, m.pod);
    const problem = isQuarantined(state, m.pod)
      ? `${m.pod} is quarantined until its data is checked`
      : inst && inst.ordinal >= rs.specReplicas
        ? `${m.pod} is being scaled away`
        : healthProblem(inst, 'replica', timings);
    const vclock = liveVclock(inst);
    if (problem === null && inst && vclock) {
      healthy.push({ pod: m.pod, ordinal: inst.ordinal, vclock, upToDate: inst.revision === rs.updateRevision });
    } else {
      problems.push(problem ?? `${m.pod} has no known vclock`);
      if (inst?.podExists && !inst.deleting && inst.tarantool?.alive) transient = true;
    }
  }
  // All of them are caught up (the hand-over waits for the rest): prefer one a rollout will not restart.
  const best = healthy.sort((a, b) => Number(b.upToDate) - Number(a.upToDate) || byGreatestVclock(a, b))[0];
  if (best) return { pod: best.pod, reason: `${best.pod} is healthy and caught up` };
  const subject = to === undefined ? 'no healthy replica' : `${to} cannot take over`;
  return { pod: null, retry: transient, reason: `${subject}: ${problems.join('; ') || `${rs.name} has no replica`}` };
}

/**
 * The switchover commands: record the intent (first persist, new term), fence `from`, wait until
 * `to` has everything `from` had; then, as the hand-over, record `to` as master and promote it.
 * `resume` re-runs the commands of a recorded switchover (idempotent) without a new record.
 */
export function switchoverStep(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  from: string,
  to: string,
  reason: string,
  now: number,
  timings: Timings,
  resume = false,
): Step {
  const record = resume && state.switchover ? state.switchover : { from, to, startedAtMs: now, reason };
  const recorded: PersistedReplicaSet = { ...state, switchover: record };
  const config = desiredReplication(rs, recorded);
  const handedOver: PersistedReplicaSet = { ...recorded, master: to, switchover: null, masterQuorum: config.synchroQuorum };
  const commands: PlannedAction[] = [
    ...(resume ? [] : [{ kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Switchover', reason } as const]),
    { kind: 'fence', replicaset: rs.name, pod: from, reason: `switchover: ${from} goes read-only first` },
    {
      kind: 'waitCatchUp',
      replicaset: rs.name,
      pod: to,
      source: from,
      reason: `switchover: ${to} must have every row ${from} has before it takes writes`,
    },
  ];
  // The old master is a healthy replica once `to` took over, but its agent still marks it fenced
  // (not ready): it is told to follow the new master. Only after a successful promotion (a gate).
  const handover: PlannedAction[] = [
    { kind: 'promote', replicaset: rs.name, pod: to, reason: `switchover: ${to} caught up with ${from} and becomes master`, gate: true, ...config },
    { kind: 'rejoinAsReplica', replicaset: rs.name, pod: from, reason: `switchover done: ${from} follows ${to} as a replica`, ...config },
    // The other replicas still name `from` as the master they follow: a replica whose named master
    // dies is not ready although it follows `to`, and nothing else would tell it.
    ...handedOver.members
      .filter((m) => m.pod !== from && m.pod !== to && !isQuarantined(handedOver, m.pod) && liveVclock(instanceOf(rs, m.pod)) !== null)
      .map((m) => ({ kind: 'reconfigure', replicaset: rs.name, pod: m.pod, reason: `switchover done: ${m.pod} follows ${to}`, ...config }) as const),
  ];
  return {
    state: recorded,
    commands,
    bumpTerm: !resume,
    reason,
    handover: { state: handedOver, commands: handover },
    final: true,
  };
}

/** Drive a recorded switchover to its end, or abandon it (the master then resumes, or failover decides). */
export function progressSwitchover(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings): Step | null {
  const record = state.switchover;
  if (record === null) return null;
  const abandon = (why: string): Step => {
    const reason = `switchover from ${record.from} to ${record.to} abandoned: ${why}`;
    return {
      state: { ...state, switchover: null },
      commands: [{ kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'SwitchoverAbandoned', reason }],
      bumpTerm: false,
      reason,
      final: false,
    };
  };
  if (state.master !== record.from) return abandon(`the recorded master is ${state.master ?? 'nobody'}`);
  const target = instanceOf(rs, record.to);
  if (!liveVclock(target) || target?.deleting) return abandon(`${record.to} is not available`);
  const failure = detectMasterFailure(rs, record.from, now, timings);
  if (failure.verdict === 'failed') return abandon(`${failure.reason}; failover decides`);
  const elapsed = now - record.startedAtMs;
  if (elapsed > 2 * timings.catchUpTimeoutMs) {
    return abandon(`${record.to} did not catch up within ${seconds(elapsed)}; ${record.from} resumes`);
  }
  return switchoverStep(rs, state, record.from, record.to, record.reason, now, timings, true);
}

/** Hand the master role over before its pod goes away (terminating, or scaled away). */
export function planLeavingMaster(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings): Step | null {
  const master = instanceOf(rs, state.master);
  if (!master || state.master === null || !isWritable(master)) return null;
  const leaving = master.deleting ? 'its pod is terminating' : master.ordinal >= rs.specReplicas ? `${rs.name} is scaled to ${rs.specReplicas}` : null;
  if (leaving === null) return null;
  const target = chooseSwitchoverTarget(rs, state, timings);
  if (target.pod === null) {
    return note(state, `master ${state.master} is leaving (${leaving}) but cannot hand over: ${target.reason}`);
  }
  const reason = `switching over from ${state.master} to ${target.pod}: ${leaving}; ${target.reason}`;
  return switchoverStep(rs, state, state.master, target.pod, reason, now, timings);
}

/** Plan a requested switchover, or refuse it with the reason (SPEC §5 Switchover). */
export function planSwitchover(
  observed: ObservedCluster,
  persisted: PersistedState,
  request: SwitchoverRequest,
  timings: Timings,
): SwitchoverPlan {
  const rs = observed.replicasets.find((r) => r.name === request.replicaset);
  const state = persisted.replicasets[request.replicaset];
  const by = request.requestedBy ? ` (requested by ${request.requestedBy})` : '';
  if (!rs || !state) return { ok: false, retry: false, reason: `no replica set ${request.replicaset} in this cluster` };
  if (rs.paused) return { ok: false, retry: true, reason: `${rs.name} is paused (shoal.dev/paused): no switchover` };
  const { master } = state;
  if (master === null) return { ok: false, retry: true, reason: `${rs.name} has no master to hand over from` };
  if (request.from !== undefined && request.from !== master) {
    // Already done (reconcile's hand-over of a terminating master, or an earlier request): nothing to do.
    const reason = `${request.from} is no longer the master of ${rs.name} (${master} is)${by}: nothing to hand over`;
    return { ok: true, from: request.from, to: master, actions: [], nextPersisted: persisted, reason };
  }
  if (state.switchover) {
    const { from, to } = state.switchover;
    return { ok: false, retry: true, reason: `a switchover from ${from} to ${to} is already in progress` };
  }
  const failure = detectMasterFailure(rs, master, observed.now, timings);
  let step: Step;
  if (failure.verdict === 'failed') {
    // The master cannot be fenced or waited for: the request is the consent a manual failover waits for.
    const choice = chooseCandidate(rs, state, master, request.to);
    if (choice.pod === null) return { ok: false, retry: true, reason: `${failure.reason}; cannot promote: ${choice.reason}` };
    step = promotion(rs, state, master, choice.pod, `promoting ${choice.pod}${by}: ${failure.reason}; ${choice.reason}`, observed.now);
  } else {
    // A terminating master (/prestop) still hands over; one we cannot reach cannot be fenced.
    const inst = instanceOf(rs, master);
    if (!inst?.podExists || !inst.agentReachable || !inst.tarantool?.alive) {
      return { ok: false, retry: true, reason: `cannot hand over from ${master} now: ${failure.reason}, agent or Tarantool not answering` };
    }
    const target = chooseSwitchoverTarget(rs, state, timings, request.to);
    if (target.pod === null) return { ok: false, retry: target.retry, reason: `switchover refused: ${target.reason}` };
    const reason = `switching over from ${master} to ${target.pod}${by}: ${target.reason}`;
    step = switchoverStep(rs, state, master, target.pod, reason, observed.now, timings);
  }
  const batch = assembleBatch(persisted, { [rs.name]: step }, timings);
  const to = step.handover?.state.master ?? step.state.master ?? '';
  return { ok: true, from: master, to, actions: batch.actions, nextPersisted: batch.nextPersisted, reason: step.reason };
}
