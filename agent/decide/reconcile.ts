import { planAdmissions } from './admission.js';
import { assembleBatch, stamp } from './batch.js';
import { planBootstrap } from './bootstrap.js';
import { fenceOthers, planFailover, planMasterRecovery } from './failover.js';
import { inMajority } from './fencing.js';
import { emptyReplicaSet } from './members.js';
import { planConfigure, planExpelCleanup, planExpels, planJoin, planReconfigure, recordObserved } from './membership.js';
import type { Action, PlannedAction, ObservedCluster, ObservedReplicaSet, PersistedReplicaSet, PersistedState, Timings } from './model.js';
import { planReplicationRepair } from './repair.js';
import { planRollout, rolloutPhaseEvent, type RolloutPhase, type RolloutPlan } from './rollout.js';
import { note, type Step } from './step.js';
import { planLeavingMaster, progressSwitchover, switchoverStep } from './switchover.js';
import { validateTimings } from './timings.js';
import { clusterRoles, planBucketBootstrap, planRouters, planRouterWakeups } from './sharding-plan.js';

// The coordinator's loop body: observe → reconcile (this) → persist (CAS) → send → re-observe.
// Per replica set, planners run in a fixed order (Patroni's HA loop); each may change the state
// and add commands; a planner marked final ends the replica set's round. Then the round's term is
// fixed (one more when any master changes) and everything is stamped with it.

export interface ReplicaSetReport {
  reason: string;
  rollout: Pick<RolloutPlan, 'phase' | 'next' | 'reason'>;
}

export interface ReconcileResult {
  /** In order; a failed gate (persist, fence, waitCatchUp, a marked reconfigure or promote — batch.ts isGate) stops the rest. */
  actions: Action[];
  nextPersisted: PersistedState;
  reason: string;
  replicasets: Record<string, ReplicaSetReport>;
  /** What the sharding planner said (SPEC §4b /status sharding.bootstrap.reason); '' when nothing is sharded. */
  sharding?: string;
}

export function emptyState(): PersistedState {
  return { term: 0, coordinator: null, replicasets: {} };
}

/** A new coordinator's first write (CAS) before it sends anything: a term no earlier command has. */
export function beginTerm(persisted: PersistedState, coordinatorPod: string): PersistedState {
  return { ...persisted, term: persisted.term + 1, coordinator: coordinatorPod };
}

const targets = (commands: readonly PlannedAction[]): Set<string> =>
  new Set(commands.flatMap((c) => ('pod' in c && c.kind !== 'expel' ? [c.pod] : [])));

function rolloutStep(rs: ObservedReplicaSet, state: PersistedReplicaSet, plan: RolloutPlan, now: number, timings: Timings): Step {
  const next: PersistedReplicaSet = { ...state, rollout: plan.progress };
  const { step } = plan;
  if (step.kind === 'deleteReplica' || step.kind === 'deleteOldMaster') {
    const commands: PlannedAction[] = [
      { kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'RolloutRestart', reason: plan.reason },
      { kind: 'deletePod', replicaset: rs.name, pod: step.pod, uid: step.uid, reason: plan.reason },
    ];
    return { state: next, commands, bumpTerm: false, reason: plan.reason, final: true };
  }
  if (step.kind === 'switchMaster') return switchoverStep(rs, next, step.from, step.to, plan.reason, now, timings);
  return note(next, plan.reason);
}

function mergeSteps(initial: PersistedReplicaSet, parts: readonly Step[]): Step {
  const last = parts[parts.length - 1];
  const handover = parts.find((p) => p.handover !== undefined)?.handover;
  return {
    state: last?.state ?? initial,
    commands: parts.flatMap((p) => p.commands),
    bumpTerm: parts.some((p) => p.bumpTerm),
    reason: parts.map((p) => p.reason).filter((r) => r !== '').join('; ') || 'nothing to do',
    ...(handover ? { handover } : {}),
    final: parts.some((p) => p.final),
  };
}

function reconcileReplicaSet(
  rs: ObservedReplicaSet,
  persisted: PersistedReplicaSet,
  now: number,
  timings: Timings,
): { step: Step; rollout: RolloutPlan } {
  const rollout = planRollout(rs, persisted, now, timings);
  if (rs.paused) return { step: note(persisted, 'paused (shoal.dev/paused): observing only'), rollout };

  let state = persisted.members.length > 0 ? recordObserved(rs, persisted) : persisted;
  const parts: Step[] = state === persisted ? [] : [note(state, 'recording observed instance ids and master quorum')];
  let done = false;
  const run = (planner: (s: PersistedReplicaSet) => Step | null): void => {
    if (done) return;
    const step = planner(state);
    if (step === null) return;
    parts.push(step);
    state = step.state;
    done = step.final;
  };
  const planned = (): PlannedAction[] => parts.flatMap((p) => p.commands);
  const busy = (): Set<string> => targets(planned());

  run((s) => planBootstrap(rs, s));
  run((s) => {
    const commands = fenceOthers(rs, s.master, s.master === null ? 'no master is recorded' : `${s.master} is the master`);
    return commands.length === 0 ? null : { state: s, commands, bumpTerm: false, reason: commands.map((c) => c.reason).join('; '), final: false };
  });
  run((s) => progressSwitchover(rs, s, now, timings));
  run((s) => planFailover(rs, s, now, timings));
  run((s) => planMasterRecovery(rs, s, now, busy()));
  run((s) => planAdmissions(rs, s, now, timings, planned()));
  run((s) => planExpels(rs, s, timings));
  run((s) => planJoin(rs, s, now));
  run((s) => planConfigure(rs, s, busy(), { now, timings, planned: planned() }));
  run((s) => planReconfigure(rs, s, busy()));
  run((s) => planReplicationRepair(rs, s, now, timings, busy(), planned()));
  run((s) => planExpelCleanup(rs, s)); // after everyone has dropped the expelled from replication
  // Hand-overs and rollout steps only in a settled round: never stacked on other changes.
  const settled = (): boolean => parts.every((p) => p.commands.length === 0);
  if (settled()) run((s) => planLeavingMaster(rs, s, now, timings));
  if (settled()) run((s) => rolloutStep(rs, s, planRollout(rs, s, now, timings), now, timings));
  return { step: mergeSteps(persisted, parts), rollout };
}

/**
 * One round of the coordinator for the whole cluster. Pure: time comes from `observed.now`, and
 * `previousPhases` is each replica set's rollout phase as the caller's last round reported it.
 */
export function reconcile(
  observed: ObservedCluster,
  persisted: PersistedState,
  timings: Timings,
  previousPhases: Readonly<Record<string, RolloutPhase>> = {},
): ReconcileResult {
  validateTimings(timings);
  const { size, reachableFromCoordinator } = observed.mesh;
  if (!inMajority(reachableFromCoordinator - 1, size)) {
    const reason = `the coordinator reaches ${reachableFromCoordinator} of ${size} agents, not a majority: observing only`;
    return { actions: [], nextPersisted: persisted, reason, replicasets: {} };
  }
  const steps: Record<string, Step> = {};
  const replicasets: Record<string, ReplicaSetReport> = {};
  const roles = clusterRoles(observed);
  for (const rs of [...observed.replicasets].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const state = persisted.replicasets[rs.name] ?? emptyReplicaSet();
    if (roles[rs.name] === 'router') {
      // Routers hold no data and have no master: none of the replica-set planners apply (SPEC §4b).
      const step = rs.paused ? note(state, 'paused (shoal.dev/paused): observing only') : planRouters(rs, state);
      steps[rs.name] = step;
      replicasets[rs.name] = { reason: step.reason, rollout: { phase: rs.paused ? 'paused' : 'idle', next: null, reason: 'routers are not rolled by Shoal yet' } };
      continue;
    }
    const { step, rollout } = reconcileReplicaSet(rs, state, observed.now, timings);
    steps[rs.name] = step;
    replicasets[rs.name] = { reason: step.reason, rollout: { phase: rollout.phase, next: rollout.next, reason: rollout.reason } };
  }
  const sharding = planBucketBootstrap(observed, persisted, roles, 2 * timings.commandBudgetMs);
  const batch = assembleBatch(persisted, steps, timings, { sharding: sharding.next, commands: sharding.commands, reason: sharding.reason });
  // Last in the batch: after every promote, hand-overs' included.
  const wakeups = planRouterWakeups(observed, roles, steps).map((c) => stamp(c, batch.nextPersisted.term, timings));
  // Phase Events lead the batch: they report the plan, whether or not a gate stops the rest.
  const phaseEvents = Object.entries(replicasets).flatMap(([name, r]) => {
    const e = rolloutPhaseEvent(name, previousPhases[name], r.rollout);
    return e === null ? [] : [stamp(e, batch.nextPersisted.term, timings)];
  });
  const reason = [...Object.entries(replicasets).map(([name, r]) => `${name}: ${r.reason}`), ...(sharding.reason ? [`sharding: ${sharding.reason}`] : [])].join('; ');
  return { actions: [...phaseEvents, ...batch.actions, ...wakeups], nextPersisted: batch.nextPersisted, reason: reason || 'no replica sets', replicasets, sharding: sharding.reason };
}
