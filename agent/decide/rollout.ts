import { seconds } from './format.js';
import { healthProblem, instanceOf, isMember, isQuarantined, liveVclock } from './members.js';
import type { PlannedAction, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, RolloutProgress, Timings } from './model.js';
import { byGreatestVclock } from '../tarantool/vclock.js';

// Master-last rolling restart (SPEC §5, issue 7): one step at a time, re-planned from the current
// observation every round. Out-of-date replicas first (one down at a time, each back, ready and
// caught up before the next), then the master handed over to an up-to-date replica, then the old
// master. Never deletes the master; never takes a second member down; waits (and says why) when
// the replica set is already degraded.

export type RolloutPhase = 'idle' | 'restarting-replicas' | 'switching-master' | 'restarting-old-master' | 'paused';

export type RolloutStep =
  | { kind: 'deleteReplica'; pod: string; uid: string | null }
  | { kind: 'deleteOldMaster'; pod: string; uid: string | null }
  | { kind: 'switchMaster'; from: string; to: string }
  | { kind: 'waitFor'; pod: string; why: string }
  | { kind: 'done' }
  | { kind: 'paused'; reason: string }
  | { kind: 'blocked'; reason: string };

export interface RolloutPlan {
  step: RolloutStep;
  phase: RolloutPhase;
  /** The pod this rollout restarts (or hands over to) next; null when nothing is left. */
  next: string | null;
  reason: string;
  /** The rollout progress to persist (null = no rollout). */
  progress: RolloutProgress | null;
}

const outdated = (rs: ObservedReplicaSet, i: ObservedInstance): boolean => i.podExists && i.revision !== rs.updateRevision;

/** Why a pod of the replica set is not fit right now (null = healthy in its role). */
function problemOf(rs: ObservedReplicaSet, state: PersistedReplicaSet, pod: string, timings: Timings): string | null {
  if (isQuarantined(state, pod)) return `${pod} is quarantined until its data is checked`;
  if (!isMember(state, pod)) return `${pod} has not joined yet`;
  return healthProblem(instanceOf(rs, pod), pod === state.master ? 'master' : 'replica', timings);
}

/** Every pod the StatefulSet should have (ordinal < spec.replicas), existing or not, plus the master. */
function podsInScope(rs: ObservedReplicaSet, state: PersistedReplicaSet): string[] {
  const pods = new Set<string>();
  for (let n = 0; n < rs.specReplicas; n++) pods.add(`${rs.name}-${n}`);
  if (state.master !== null) pods.add(state.master);
  return [...pods];
}

export function planRollout(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings): RolloutPlan {
  const master = state.master;
  // A new revision mid-rollout keeps what is in flight and re-plans the rest from what is observed.
  let progress: RolloutProgress | null =
    state.rollout === null || state.rollout.revision === rs.updateRevision
      ? state.rollout
      : { ...state.rollout, revision: rs.updateRevision };
  const plan = (step: RolloutStep, phase: RolloutPhase, next: string | null, reason: string): RolloutPlan => ({
    step,
    phase,
    next,
    reason,
    progress,
  });
  const scope = podsInScope(rs, state);
  const stale = scope
    .map((pod) => instanceOf(rs, pod))
    .filter((i): i is ObservedInstance => i !== undefined && outdated(rs, i))
    .sort((a, b) => b.ordinal - a.ordinal); // Kubernetes' order among replicas: highest ordinal first
  const firstStale = stale[0]?.pod ?? null;

  if (rs.paused) {
    const inFlight = progress?.inFlight ? `; ${progress.inFlight.pod}'s restart is still finishing` : '';
    return plan({ kind: 'paused', reason: 'shoal.dev/paused is set' }, 'paused', firstStale, `rollout paused (shoal.dev/paused)${inFlight}`);
  }

  const problems = new Map(scope.map((pod) => [pod, problemOf(rs, state, pod, timings)] as const));
  /** A member other than `except` that is down: nothing more may be taken down. */
  const blockerBesides = (except: string | undefined) => [...problems].find(([pod, problem]) => problem !== null && pod !== except);

  let flight = progress?.inFlight ?? null;
  if (flight !== null && flight.pod === master) {
    // It became master (a failover or hand-over) before its deletion took effect: re-plan; it is
    // handed over first like any out-of-date master.
    flight = null;
  }
  if (flight !== null && scope.includes(flight.pod)) {
    const inst = instanceOf(rs, flight.pod);
    const phase = flight.pod === progress?.oldMaster ? 'restarting-old-master' : 'restarting-replicas';
    const overdue = now - flight.deletedAtMs > timings.podRestartTimeoutMs;
    const notYetDeleted = inst !== undefined && inst.podExists && inst.uid === flight.uid && !inst.deleting;
    if (notYetDeleted && !overdue && !blockerBesides(flight.pod)) {
      // The delete may have been lost: send it again. Same pod, same uid precondition: idempotent,
      // and still the only member down on purpose.
      const kind = phase === 'restarting-old-master' ? 'deleteOldMaster' : 'deleteReplica';
      const reason = `deleting ${flight.pod} again: its deletion is not visible ${seconds(now - flight.deletedAtMs)} after it was sent`;
      return plan({ kind, pod: flight.pod, uid: flight.uid }, phase, flight.pod, reason);
    }
    const problem = notYetDeleted
      ? `the deletion of ${flight.pod} has not taken effect yet`
      : problems.get(flight.pod) ?? problemOf(rs, state, flight.pod, timings);
    if (problem !== null) {
      const waited = `${problem} (${seconds(now - flight.deletedAtMs)} since it was deleted)`;
      if (overdue) return plan({ kind: 'blocked', reason: waited }, phase, flight.pod, `rollout blocked: ${waited}`);
      return plan({ kind: 'waitFor', pod: flight.pod, why: problem }, phase, flight.pod, `rollout waits: ${waited}`);
    }
  }
  if (progress !== null && progress.inFlight !== null) progress = { ...progress, inFlight: null };

  if (stale.length === 0) {
    progress = null;
    return plan({ kind: 'done' }, 'idle', null, `every pod of ${rs.name} runs revision ${rs.updateRevision}`);
  }
  progress ??= { revision: rs.updateRevision, inFlight: null, oldMaster: null, startedAtMs: now };

  const staleReplicas = stale.filter((i) => i.pod !== master);
  // An out-of-date replica that is already down costs nothing to restart (a rollback may be its cure).
  const target = staleReplicas.find((i) => problems.get(i.pod) !== null) ?? staleReplicas[0];
  const blocker = blockerBesides(target?.pod);
  if (blocker) {
    const [pod, problem] = blocker;
    const phase = target === undefined ? 'switching-master' : target.pod === progress.oldMaster ? 'restarting-old-master' : 'restarting-replicas';
    return plan({ kind: 'waitFor', pod, why: problem ?? '' }, phase, target?.pod ?? master, `rollout waits: ${problem ?? ''}`);
  }

  if (target !== undefined) {
    const isOldMaster = target.pod === progress.oldMaster;
    progress = { ...progress, inFlight: { pod: target.pod, uid: target.uid, deletedAtMs: now } };
    const reason = `restarting ${isOldMaster ? 'old master' : 'replica'} ${target.pod} (revision ${target.revision ?? 'unknown'} → ${rs.updateRevision})`;
    return isOldMaster
      ? plan({ kind: 'deleteOldMaster', pod: target.pod, uid: target.uid }, 'restarting-old-master', target.pod, reason)
      : plan({ kind: 'deleteReplica', pod: target.pod, uid: target.uid }, 'restarting-replicas', target.pod, reason);
  }

  // Only the master is out of date: hand over to the best up-to-date replica first.
  if (master === null) return plan({ kind: 'blocked', reason: 'no master recorded' }, 'switching-master', null, 'rollout blocked: no master recorded');
  const masterPod = master;
  const successor = state.members
    .filter((m) => m.pod !== masterPod && scope.includes(m.pod))
    .map((m) => ({ inst: instanceOf(rs, m.pod), pod: m.pod }))
    .filter(({ inst }) => inst !== undefined && !outdated(rs, inst))
    .map(({ inst, pod }) => ({ pod, ordinal: inst?.ordinal ?? 0, vclock: liveVclock(inst) }))
    .filter((c): c is { pod: string; ordinal: number; vclock: NonNullable<typeof c.vclock> } => c.vclock !== null)
    .sort(byGreatestVclock)[0];
  if (!successor) {
    const reason = `master ${masterPod} is out of date and no up-to-date healthy replica can take over`;
    return plan({ kind: 'blocked', reason }, 'switching-master', masterPod, `rollout blocked: ${reason}`);
  }
  progress = { ...progress, oldMaster: masterPod };
  return plan(
    { kind: 'switchMaster', from: masterPod, to: successor.pod },
    'switching-master',
    masterPod,
    `rollout: handing master ${masterPod} over to up-to-date ${successor.pod} before restarting it`,
  );
}

const WORKING: readonly RolloutPhase[] = ['restarting-replicas', 'switching-master', 'restarting-old-master'];

/**
 * The Event a change of rollout phase is worth: paused, or complete after working (its deletions
 * and hand-over have their own). `previous` is the phase this coordinator planned last round;
 * undefined (it has just taken over) reports from then on rather than guess what it missed.
 */
export function rolloutPhaseEvent(replicaset: string, previous: RolloutPhase | undefined, plan: Pick<RolloutPlan, 'phase' | 'reason'>): PlannedAction | null {
  if (previous === undefined || previous === plan.phase) return null;
  const event = (eventReason: string): PlannedAction => ({ kind: 'event', replicaset, eventType: 'Normal', eventReason, reason: plan.reason });
  if (plan.phase === 'paused') return event('RolloutPaused');
  if (plan.phase === 'idle' && WORKING.includes(previous)) return event('RolloutComplete');
  return null;
}
