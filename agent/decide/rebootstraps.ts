import { seconds } from './format.js';
import type { PlannedAction, PersistedReplicaSet, Timings } from './model.js';

// One rebootstrap at a time per replica set. A rebootstrap takes a member out (its data moved aside,
// it restarts empty and copies everything from the master): two at once can take the synchro quorum
// with them, and, when the master is the one that lost rows, put every other copy of those rows
// aside at once. So a second member waits until the first one is back.

/**
 * Why `pod` may not be rebootstrapped now: another member's rebootstrap is under way — planned in
 * this round (`planned`), a repair rebootstrapping or rejoining, or a quarantined member whose
 * rebootstrap was requested less than rebootstrapRetryMs ago (one never seen done frees the slot
 * then). null: the slot is free (or already `pod`'s).
 */
export function rebootstrapBlocker(
  state: PersistedReplicaSet,
  pod: string,
  planned: readonly PlannedAction[],
  now: number,
  timings: Timings,
): string | null {
  const inRound = planned.find((c): c is Extract<PlannedAction, { kind: 'rebootstrap' }> => c.kind === 'rebootstrap' && c.pod !== pod);
  if (inRound) return `${inRound.pod} is being rebootstrapped (one member at a time)`;
  const repair = state.repairs.find((r) => r.pod !== pod && (r.step === 'rebootstrapping' || r.step === 'rejoining'));
  if (repair) {
    const how = repair.step === 'rebootstrapping' ? 'is being rebootstrapped' : 'rejoins after its rebootstrap';
    return `${repair.pod} ${how} (one member at a time)`;
  }
  const quarantined = state.quarantined.find(
    (q) => q.pod !== pod && q.rebootstrapRequestedAtMs !== null && now - q.rebootstrapRequestedAtMs < timings.rebootstrapRetryMs,
  );
  if (quarantined) {
    const ago = seconds(now - (quarantined.rebootstrapRequestedAtMs ?? now));
    return `${quarantined.pod}'s rebootstrap was requested ${ago} ago (one member at a time)`;
  }
  return null;
}
