import { emptyReplicaSet } from './members.js';
import type { Action, PlannedAction, PersistedReplicaSet, PersistedState, Timings } from './model.js';
import type { ShardingState } from './sharding.js';
import { budgetMs } from './timings.js';
import type { Step } from './step.js';

// Turns the round's per-replica-set steps into one ordered batch:
//   persist(state)  → commands …  [→ persist(state after hand-over) → hand-over commands …]
// every action stamped with the round's term (and an agent's action with its time budget). The shell sends them in order and stops at the first
// failed gate (see isGate), then re-observes.

/** JSON with sorted keys: state equality that does not depend on key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The round's term on a planned action, and the budget of the agent that carries it out. */
export function stamp(planned: PlannedAction, term: number, timings: Timings): Action {
  const budget = budgetMs(planned, timings);
  return (budget === null ? { ...planned, term } : { ...planned, term, budgetMs: budget }) as Action;
}

/**
 * Actions whose failure must stop the rest of the batch: a lost CAS (someone else decided), a fence
 * not acknowledged (a second writer may exist), a catch-up that timed out (promoting would lose writes),
 * and a reconfigure or promotion that later actions build on (marked `gate`).
 */
export function isGate(action: Action): boolean {
  if (action.kind === 'reconfigure' || action.kind === 'promote') return action.gate === true;
  return action.kind === 'persist' || action.kind === 'fence' || action.kind === 'waitCatchUp';
}

export interface Batch {
  actions: Action[];
  nextPersisted: PersistedState;
}

function withReplicaSets(state: PersistedState, term: number, sets: Record<string, PersistedReplicaSet>): PersistedState {
  return { ...state, term, replicasets: { ...state.replicasets, ...sets } };
}

/** What the round decided for the cluster as a whole (sharding.ts): its record and its commands, after the replica sets'. */
export interface ClusterStep {
  sharding: ShardingState | undefined;
  commands: readonly PlannedAction[];
  reason: string;
}

export function assembleBatch(persisted: PersistedState, steps: Readonly<Record<string, Step>>, timings: Timings, cluster?: ClusterStep): Batch {
  const changed = (name: string, s: Step) =>
    stableJson(persisted.replicasets[name] ?? emptyReplicaSet()) !== stableJson(s.state);
  // A replica set never recorded and still without state is not written (no empty entries).
  const entries = Object.entries(steps)
    .filter(([name, s]) => persisted.replicasets[name] !== undefined || changed(name, s) || s.commands.length > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const term = persisted.term + (entries.some(([, s]) => s.bumpTerm) ? 1 : 0);
  const clusterChanged = cluster !== undefined && stableJson(cluster.sharding ?? null) !== stableJson(persisted.sharding ?? null);
  const base = clusterChanged && cluster.sharding !== undefined ? { ...persisted, sharding: cluster.sharding } : persisted;
  const firstStage = withReplicaSets(base, term, Object.fromEntries(entries.map(([name, s]) => [name, s.state])));
  const handovers = entries.filter(([, s]) => s.handover !== undefined);
  const finalState = withReplicaSets(
    firstStage,
    term,
    Object.fromEntries(handovers.map(([name, s]) => [name, s.handover?.state ?? s.state])),
  );
  const why = [
    ...entries.filter(([name, s]) => changed(name, s)).map(([name, s]) => `${name}: ${s.reason}`),
    ...(clusterChanged ? [`sharding: ${cluster.reason}`] : []),
  ].join('; ');

  const actions: Action[] = [];
  if (stableJson(firstStage) !== stableJson(persisted)) {
    actions.push({ kind: 'persist', term, state: firstStage, reason: `recording term ${term}${why ? ` — ${why}` : ''}` });
  }
  for (const [, s] of entries) actions.push(...s.commands.map((c) => stamp(c, term, timings)));
  if (cluster) actions.push(...cluster.commands.map((c) => stamp(c, term, timings)));
  if (handovers.length > 0) {
    const names = handovers.map(([name]) => name).join(', ');
    actions.push({ kind: 'persist', term, state: finalState, reason: `recording the new master of ${names} before promoting it` });
    for (const [, s] of handovers) actions.push(...(s.handover?.commands ?? []).map((c) => stamp(c, term, timings)));
  }
  return { actions, nextPersisted: finalState };
}
