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
  /**
   * Mesh peers that hear each other with this agent right now: this agent hears them and their
   * latest heartbeat says they hear it. Counting only whom this agent hears would let a master
   * whose outgoing frames are lost (a one-way partition) keep its seat while its peers, who no
   * longer hear it, fail it over.
   */
  reachablePeers: number;
  /** Agents in the cluster, this one included. */
  clusterSize: number;
  /** Whether the pod watch has listed the cluster at least once: before that no count is a majority. */
  peersKnown: boolean;
  /** Since when this agent has continuously been without a majority (trackSince), null = has one. */
  lostMajoritySinceMs: number | null;
  now: number;
  timings: Timings;
}

export interface SelfFenceDecision {
  fence: boolean;
  /**
   * Whether to renew the Tarantool watchdog's lease (shoal.lua): only with a mutual majority, so a
   * master whose agent is cut off, hung or dead goes read-only by itself when the lease runs out.
   */
  renewLease: boolean;
  reason: string;
}

/** Whether this agent holds a majority it can act on: the peers are known and enough of them hear it. */
export function holdsMajority(peersKnown: boolean, reachablePeers: number, clusterSize: number): boolean {
  return peersKnown && inMajority(reachablePeers, clusterSize);
}

export function shouldSelfFence(input: SelfFenceInput): SelfFenceDecision {
  const { isMaster, reachablePeers, clusterSize, peersKnown, lostMajoritySinceMs, now, timings } = input;
  const deadline = fenceDeadline(timings);
  const sees = peersKnown ? `hears and is heard by ${reachablePeers + 1} of ${clusterSize} agents` : 'does not know its peers yet (no pod list)';
  const majority = holdsMajority(peersKnown, reachablePeers, clusterSize);
  const who = isMaster ? 'master' : 'member';
  if (majority) return { fence: false, renewLease: true, reason: `${who} ${sees}: has a majority, renews the watchdog lease` };
  if (!isMaster) return { fence: false, renewLease: false, reason: `not a master: nothing to fence (${sees}; the watchdog lease is not renewed)` };
  // Without a start time the loss is only just noticed: count from now (never fence on no evidence).
  const lostForMs = now - (lostMajoritySinceMs ?? now);
  if (lostForMs >= deadline) {
    return {
      fence: true,
      renewLease: false,
      reason: `master ${sees} for ${seconds(lostForMs)}, past the ${seconds(deadline)} self-fence deadline: going read-only before a failover can promote another`,
    };
  }
  return { fence: false, renewLease: false, reason: `master ${sees} for ${seconds(lostForMs)}: fencing at ${seconds(deadline)}` };
}

export interface CoordinateInput {
  /** Whether this agent holds the coordinator Lease now (keeping) or not (taking). */
  holding: boolean;
  peersKnown: boolean;
  /** Peers that hear this agent and that it hears (as for self-fencing). */
  reachablePeers: number;
  clusterSize: number;
  lostMajoritySinceMs: number | null;
  now: number;
  timings: Timings;
}

/**
 * Whether this agent may take or keep the coordinator Lease. Only the majority side of the mesh can
 * act (its commands reach a majority; the other side fences itself), so a coordinator cut off from
 * the majority releases the Lease once the self-fence deadline has passed, instead of renewing it
 * while the majority waits for it to expire; and an agent without a majority does not contend.
 */
export function mayCoordinate(input: CoordinateInput): { ok: boolean; reason: string } {
  const { holding, peersKnown, reachablePeers, clusterSize, lostMajoritySinceMs, now, timings } = input;
  const sees = peersKnown ? `hears and is heard by ${reachablePeers + 1} of ${clusterSize} agents` : 'does not know its peers yet (no pod list)';
  if (holdsMajority(peersKnown, reachablePeers, clusterSize)) return { ok: true, reason: `${sees}: on the majority side` };
  if (!holding) return { ok: false, reason: `${sees}: only an agent on the majority side may take the coordinator Lease` };
  const lostForMs = now - (lostMajoritySinceMs ?? now);
  const graceMs = fenceDeadline(timings);
  if (lostForMs < graceMs) return { ok: true, reason: `coordinator ${sees} for ${seconds(lostForMs)}: releasing the Lease at ${seconds(graceMs)}` };
  return {
    ok: false,
    reason: `coordinator ${sees} for ${seconds(lostForMs)}, past ${seconds(graceMs)}: releasing the Lease so the majority side can elect a coordinator that can act`,
  };
}
