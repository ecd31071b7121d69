import type { PlannedAction, PersistedReplicaSet } from './model.js';

/**
 * What one planner decided for one replica set in one round. The reconcile loop threads `state`
 * from planner to planner; reconcile.ts turns the steps into one ordered batch of actions.
 */
export interface Step {
  state: PersistedReplicaSet;
  /** Sent after the round's persist, in this order. */
  commands: readonly PlannedAction[];
  /** The master changes: the round's term grows. */
  bumpTerm: boolean;
  reason: string;
  /**
   * A switchover's second half: `state` is persisted (a second CAS) only after every command above
   * succeeded (fence, catch-up), then `commands` (the promotion) are sent.
   */
  handover?: { state: PersistedReplicaSet; commands: readonly PlannedAction[] };
  /** Later planners must not act on this replica set in this round. */
  final: boolean;
}

/** A step that only reports. */
export function note(state: PersistedReplicaSet, reason: string): Step {
  return { state, commands: [], bumpTerm: false, reason, final: false };
}
