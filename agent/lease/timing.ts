// The timing rules of leader election, as pure functions over a local monotonic clock (client-go's
// leaderelection semantics). Remote timestamps in the Lease are written for humans and other tools
// but never trusted for decisions: clocks of different pods disagree.
import { ShoalError } from '../../common/errors.js';

export interface ElectionTimings {
  /** How long a non-leader waits after last seeing the record change before it may take over. */
  leaseDurationMs: number;
  /** How long a leader keeps acting without a successful renewal before it steps down. */
  renewDeadlineMs: number;
  /** Pause between acquire/renew attempts (acquire attempts add up to 1.2× jitter). */
  retryPeriodMs: number;
}

/** client-go's defaults (kube-controller-manager uses the same): 15 s / 10 s / 2 s. */
export const DEFAULT_ELECTION_TIMINGS: ElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** SHOAL_LEASE_SECONDS scaled with client-go's proportions (15 s / 10 s / 2 s), checked. */
export function electionTimings(leaseSeconds: number): ElectionTimings {
  const leaseDurationMs = leaseSeconds * 1000;
  return validateElectionTimings({ leaseDurationMs, renewDeadlineMs: Math.round((leaseDurationMs * 2) / 3), retryPeriodMs: Math.round((leaseDurationMs * 2) / 15) });
}

/** client-go's JitterFactor: acquire attempts wait retryPeriod × [1, 2.2). */
export const JITTER_FACTOR = 1.2;

/**
 * Checks leaseDuration > renewDeadline > 1.2 × retryPeriod (client-go's rule): a leader must give up
 * before others may take over, and have at least one jittered retry inside its deadline.
 * The lease duration is written as whole seconds (leaseDurationSeconds), so it must be one.
 */
export function validateElectionTimings(t: ElectionTimings): ElectionTimings {
  const hint = 'choose leaseDuration > renewDeadline > 1.2 × retryPeriod, e.g. 15 s / 10 s / 2 s (SHOAL_LEASE_SECONDS sets the lease duration)';
  for (const [name, v] of Object.entries(t) as Array<[keyof ElectionTimings, number]>) {
    if (!Number.isFinite(v) || v <= 0) throw new ShoalError(`leader election ${name} must be a positive number of milliseconds, got ${v}`, hint);
  }
  if (t.leaseDurationMs % 1000 !== 0) {
    throw new ShoalError(`leader election leaseDuration must be whole seconds (the Lease stores seconds), got ${t.leaseDurationMs} ms`, hint);
  }
  if (t.leaseDurationMs <= t.renewDeadlineMs) {
    throw new ShoalError(
      `leader election leaseDuration (${t.leaseDurationMs} ms) must be greater than renewDeadline (${t.renewDeadlineMs} ms): otherwise another pod may take over while this one still acts as leader`,
      hint,
    );
  }
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) {
    throw new ShoalError(
      `leader election renewDeadline (${t.renewDeadlineMs} ms) must be greater than ${JITTER_FACTOR} × retryPeriod (${t.retryPeriodMs} ms): otherwise one slow retry loses leadership`,
      hint,
    );
  }
  return t;
}

/** The fields of a Lease that matter to the election, as read from the API. */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** As stored, for identity only (never compared with the local clock). */
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
  /**
   * The pod UID of the holder (annotation shoal.dev/holder-uid; '' when unknown). Pod names are
   * reused by a recreated pod, UIDs never: only a UID match proves the holder was this very pod.
   */
  holderUid: string;
}

/** When this process last saw the record change, on its own clock. */
export interface Observation {
  key: string;
  atMs: number;
}

/** A string that changes whenever any election field of the record changes. */
export function recordKey(r: LeaseRecord): string {
  return JSON.stringify([r.holderIdentity, r.holderUid, r.leaseDurationSeconds, r.acquireTime, r.renewTime, r.leaseTransitions]);
}

/**
 * client-go's clock-skew rule: the lease's age is measured from when *we* first saw the current
 * record, so only our own clock's rate matters, never the writer's clock.
 */
export function observe(prev: Observation | undefined, record: LeaseRecord, nowMs: number): Observation {
  const key = recordKey(record);
  return prev && prev.key === key ? prev : { key, atMs: nowMs };
}

/** Who is asking: the pod name (holderIdentity) and the pod UID ('' when the agent was not given it). */
export interface Candidate {
  identity: string;
  uid: string;
}

export type AcquireVerdict =
  | { action: 'acquire'; takeover: boolean; reason: string }
  | { action: 'wait'; reason: string }
  | { action: 'release'; reason: string };

/** What the elector knows of itself besides the record. */
export interface ElectorState {
  /** This process holds the lease and is within its renew deadline. */
  leading: boolean;
  /** acquireTime of this process's last acquisition ('' if it never held the lease). */
  ownAcquireTime: string;
  /** Until when (local clock) this process leaves a free lease to its peers (see yieldAfterReleaseMs). */
  yieldUntilMs: number;
}

/**
 * What `self` does with the lease now: acquire it (free; ours; or unchanged for longer than its
 * leaseDurationSeconds since we observed it), wait, or release it.
 *
 * Release: the lease names this pod and this pod's UID but an acquisition this process never made,
 * so the holder was an earlier agent process of this same pod. A container is restarted only after
 * its process has exited, so that holder is gone: waiting out its lease would only delay a new
 * coordinator. It is freed at once, and `yieldUntilMs` then keeps this restarted process from taking
 * the free lease back before its peers had their turn: a crashed coordinator hands over to another
 * pod. Same name with another UID (a recreated pod, possibly a force-deleted one still running
 * elsewhere) proves nothing, so that lease is waited out like anyone else's.
 */
export function judgeAcquire(record: LeaseRecord, observation: Observation, self: Candidate, nowMs: number, me: ElectorState): AcquireVerdict {
  const ours = record.holderIdentity === self.identity;
  if (ours && me.leading) return { action: 'acquire', takeover: false, reason: 'we hold the lease' };
  if (ours && me.ownAcquireTime !== '' && record.acquireTime === me.ownAcquireTime) {
    // client-go's rule for its own record: nobody took it while we could not renew.
    return { action: 'acquire', takeover: false, reason: 'the lease is still ours from before we stepped down' };
  }
  if (ours && self.uid !== '' && record.holderUid === self.uid) {
    return { action: 'release', reason: `the lease names an earlier agent process of this pod (uid ${self.uid}), which has exited: freeing it for a peer` };
  }
  if (record.holderIdentity === '') {
    if (nowMs < me.yieldUntilMs) return { action: 'wait', reason: `the lease is free; leaving it to a peer for another ${Math.ceil(me.yieldUntilMs - nowMs)} ms` };
    return { action: 'acquire', takeover: true, reason: 'the lease is free' };
  }
  const expiresAt = observation.atMs + record.leaseDurationSeconds * 1000;
  const holder = ours ? `an earlier process of ${self.identity}` : record.holderIdentity;
  if (nowMs >= expiresAt) {
    return {
      action: 'acquire',
      takeover: true,
      reason: `${holder} has not renewed for ${nowMs - observation.atMs} ms (lease ${record.leaseDurationSeconds} s)`,
    };
  }
  return { action: 'wait', reason: `held by ${holder} for another ${expiresAt - nowMs} ms` };
}

/**
 * How long a process that freed its earlier incarnation's lease leaves it to peers: every live
 * candidate retries within retryPeriod × (1 + JITTER_FACTOR), plus one retryPeriod for a slow
 * request. With no peer answering, the restarted process takes the lease itself afterwards.
 */
export function yieldAfterReleaseMs(t: ElectionTimings): number {
  return Math.ceil(t.retryPeriodMs * (2 + JITTER_FACTOR));
}

/**
 * Is a leader whose last successful renewal *started* at `renewStartMs` still entitled to act?
 * The start of the request is the safe mark: the server may have applied the write at any moment
 * after it, and others measure the lease from when they saw it, which is later still. Stepping
 * down at renewStart + renewDeadline < renewStart + leaseDuration therefore happens before any
 * other pod can consider the lease expired.
 */
export function leadershipValid(renewStartMs: number, nowMs: number, t: ElectionTimings): boolean {
  return nowMs - renewStartMs < t.renewDeadlineMs;
}

/** How long a renew request may take so that a hung request can't outlive the deadline. */
export function renewRequestBudgetMs(renewStartMs: number, nowMs: number, t: ElectionTimings): number {
  return Math.max(0, renewStartMs + t.renewDeadlineMs - nowMs);
}

/** Wait between acquire attempts: retryPeriod × [1, 1 + JITTER_FACTOR). */
export function acquireRetryDelayMs(t: ElectionTimings, random: () => number = Math.random): number {
  return Math.round(t.retryPeriodMs * (1 + JITTER_FACTOR * Math.min(1, Math.max(0, random()))));
}

/** The fields to write when `self` acquires or renews over `current` (undefined = no Lease yet). */
export function nextRecord(current: LeaseRecord | undefined, self: Candidate, nowIso: string, t: ElectionTimings): LeaseRecord {
  const ours = current?.holderIdentity === self.identity;
  return {
    holderIdentity: self.identity,
    holderUid: self.uid,
    leaseDurationSeconds: t.leaseDurationMs / 1000,
    acquireTime: ours && current ? current.acquireTime : nowIso,
    renewTime: nowIso,
    // Count a transition whenever the holder changes (client-go), not on the first creation.
    leaseTransitions: current ? (ours ? current.leaseTransitions : current.leaseTransitions + 1) : 0,
  };
}

/**
 * What a leader writes on graceful shutdown (client-go's ReleaseOnCancel): no holder and a 1 s
 * lease, so a waiting candidate takes over on its next retry instead of after a full lease.
 */
export function releasedRecord(current: LeaseRecord, nowIso: string): LeaseRecord {
  return { ...current, holderIdentity: '', holderUid: '', leaseDurationSeconds: 1, acquireTime: nowIso, renewTime: nowIso };
}
