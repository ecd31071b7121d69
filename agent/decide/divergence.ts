import type { ObservedInstance, ObservedTarantool, ObservedUpstream, Vclock } from './model.js';
import { aheadComponents, formatVclock } from '../tarantool/vclock.js';

// Divergence: a replica whose applier stopped on a row from the master that conflicts with its own
// data holds a different data set from the master's. No replication restart heals that (the master
// sends the same row again), and silently retrying hides it: it is reported (Event, /status) and
// repaired by a rebootstrap with the replica's data kept aside, after comparing what each side holds.

/**
 * Applier errors that mean the two data sets differ. Texts as Tarantool reports them in
 * box.info.replication[n].upstream.message (it shows no error code there):
 * - ER_TUPLE_FOUND: 2.6 `Duplicate key exists in unique index 'pk' in space 't'`, 3.8 `Duplicate key
 *   exists in unique index "pk" in space "t" with old tuple - […] and new tuple - […]` (both
 *   reproduced, also on `_space` for a space created on both sides);
 * - ER_NO_SUCH_SPACE `Space '512' does not exist` (a space dropped on the replica; both reproduced);
 * - ER_FIELD_TYPE `Tuple field 2 type does not match one required by operation: …` (3.8 names the
 *   field: `Tuple field 2 (v) type …`; a format only the replica has; both reproduced);
 * - ER_SPLIT_BRAIN `Split-Brain discovered: …` (Tarantool 3's synchronous replication; from its
 *   errcode.h, not reproduced here).
 */
export const DATA_CONFLICTS: readonly RegExp[] = [
  /Duplicate key exists in unique index/,
  /Space '[^']*' does not exist/,
  /Tuple field .* type does not match one required by operation/,
  /Split-Brain discovered/,
];

/**
 * What an upstream's state means: running (following, or on its way: connecting, syncing, even
 * disconnected, which heals by itself), stopped (an applier error a replication restart may heal),
 * diverged (stopped on a row that conflicts with the replica's data).
 */
export type UpstreamCondition = 'running' | 'stopped' | 'diverged';

export function upstreamCondition(up: ObservedUpstream): UpstreamCondition {
  if (up.status !== 'stopped') return 'running';
  const message = up.message ?? '';
  return DATA_CONFLICTS.some((re) => re.test(message)) ? 'diverged' : 'stopped';
}

/** `inst`'s upstream from `master` when it stopped on a data conflict; null otherwise (or unknown). */
export function divergedUpstream(inst: ObservedInstance, master: ObservedInstance): ObservedUpstream | null {
  const up = inst.tarantool?.upstreams.find((u) => u.uuid === master.instanceUuid);
  return up !== undefined && upstreamCondition(up) === 'diverged' ? up : null;
}

/**
 * Whether `t`'s vclock may still grow by rows pulled from others: some upstream runs (or, from an
 * agent that reports no upstreams, replication is configured). An unconfigured instance reports its
 * files' vclock, which nothing changes.
 */
export function mayBeReceiving(t: ObservedTarantool): boolean {
  if (!t.configured) return false;
  if (t.upstreams.length === 0) return t.replication.length > 0;
  return t.upstreams.some((u) => u.status !== 'stopped');
}

/** One component in which a replica holds rows the master lacks. */
export interface Lacking {
  id: number;
  /** The replica's lsn of that component. */
  mine: number;
  /** The master's. */
  theirs: number;
}

export interface Comparison {
  /** Every component in which `mine` is ahead of `theirs`, the master's own included. */
  lacking: Lacking[];
  /** The master's own component is among them: the master may have lost rows it once had. */
  masterOwn: boolean;
}

/**
 * What `mine` (a replica's vclock) holds that `theirs` (the master's, whose box.info.id is
 * `masterId`) lacks, every component compared, the master's own too: a replica can only hold rows
 * of the master's component that the master wrote, so more of them than the master has means the
 * master lost rows (or our view of the master is older than the replica's: see mayBeReceiving).
 */
export function compareWithMaster(mine: Vclock, theirs: Vclock, masterId: number | null): Comparison {
  const lacking = aheadComponents(mine, theirs).map((c) => ({ id: c.id, mine: c.lsn, theirs: c.other }));
  return { lacking, masterOwn: masterId !== null && lacking.some((c) => c.id === masterId) };
}

/** `2: 1 > 0, 1: 12 > 10` for reasons. */
export const formatLacking = (lacking: readonly Lacking[]): string => lacking.map((c) => `${c.id}: ${c.mine} > ${c.theirs}`).join(', ');

/**
 * One sentence on what `pod` (vclock `mine`) holds that `master` (vclock `theirs`) lacks, with both
 * vclocks: the record an Event and the kept-aside data's note carry.
 */
export function describeComparison(pod: string, mine: Vclock, master: string, theirs: Vclock, c: Comparison): string {
  const clocks = `${pod} ${formatVclock(mine)}, ${master} ${formatVclock(theirs)}`;
  if (c.lacking.length === 0) return `${clocks}: ${pod} holds nothing ${master} lacks`;
  const lost = c.masterOwn ? ` (${master}'s own component included: ${master} may have lost rows it once had)` : '';
  return `${clocks}: ${pod} holds rows ${master} lacks (${formatLacking(c.lacking)})${lost}; its data kept aside in shoal-diverged-* is their only record`;
}
