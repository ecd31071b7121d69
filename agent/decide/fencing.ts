import type { Timings } from './model.js';
import { seconds } from './format.js';
import { fenceDeadline } from './timings.js';

// Self-fencing, the agent's half of split-brain prevention: a master that cannot see a mesh majority
// makes itself read-only before the coordinator (on the majority side) may promote someone else.

/** Whether a node that sees `connectedPeers` other agents is on the majority side of a `clusterSize` mesh. */
export function inMajority(connectedPeers: number, clusterSize: number): boolean {
  return (connectedPeers + 1) * 2 > clusterSize;
}

/**
 * Keeps a "continuously since" timestamp: the first time `condition` was seen true in an unbroken
 * run, or null when it is false now. The observer uses it for unreachableSinceMs and friends.
 */
export function trackSince(previousSinceMs: number | null, condition: boolean, now: number): number | null {
  if (!condition) return null;
  return previousSinceMs ?? now;
}

export interface SelfFenceInput {
  isMaster: boolean;
  /** Mesh peers this agent is connected to right now. */
  reachablePeers: number;
  /** Agents in the cluster, this one included. */
  clusterSize: number;
  /** Since when this agent has continuously been without a majority (trackSince), null = has one. */
  lostMajoritySinceMs: number | null;
  now: number;
  timings: Timings;
}

export interface SelfFenceDecision {
  fence: boolean;
  reason: string;
}

export function shouldSelfFence(input: SelfFenceInput): SelfFenceDecision {
  const { isMaster, reachablePeers, clusterSize, lostMajoritySinceMs, now, timings } = input;
  const deadline = fenceDeadline(timings);
  const sees = `sees ${reachablePeers + 1} of ${clusterSize} agents`;
  if (!isMaster) return { fence: false, reason: 'not a master: nothing to fence' };
  if (inMajority(reachablePeers, clusterSize)) return { fence: false, reason: `master ${sees}: has a majority` };
  // Without a start time the loss is only just noticed: count from now (never fence on no evidence).
  const lostForMs = now - (lostMajoritySinceMs ?? now);
  if (lostForMs >= deadline) {
    return {
      fence: true,
      reason: `master ${sees} for ${seconds(lostForMs)}, past the ${seconds(deadline)} self-fence deadline: going read-only before a failover can promote another`,
    };
  }
  return { fence: false, reason: `master ${sees} for ${seconds(lostForMs)}: fencing at ${seconds(deadline)}` };
}
