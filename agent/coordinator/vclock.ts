import type { Vclock } from './model.js';
import { aheadComponents, compare, covers as coversAll, formatVclock as format, signature } from '../instance/vclock.js';

// The coordinator's view of vector clocks, on top of the one arithmetic in agent/instance/vclock.ts
// (component 0 — local, never-replicated rows — takes part in no comparison there).

export type VclockOrder = 'equal' | 'less' | 'greater' | 'concurrent';

const ORDER = { equal: 'equal', before: 'less', after: 'greater', concurrent: 'concurrent' } as const;

/** Component-wise order of `a` relative to `b`. */
export const compareVclocks = (a: Vclock, b: Vclock): VclockOrder => ORDER[compare(a, b)];

/** `a` has everything `b` has (equal or greater). */
export const covers = (a: Vclock, b: Vclock): boolean => coversAll(a, b);

/** `a` has everything `b` has and more. */
export const isAhead = (a: Vclock, b: Vclock): boolean => compareVclocks(a, b) === 'greater';

/** Sum of the replicated components (Tarantool's signature). */
export const vclockSum = (clock: Vclock): number => signature(clock);

/** The components in which `a` has rows `b` lacks, skipping `ignore` (e.g. the master's own). */
export function componentsAhead(a: Vclock, b: Vclock, ignore: readonly string[] = []): string[] {
  return aheadComponents(a, b)
    .map((c) => String(c.id))
    .filter((key) => !ignore.includes(key));
}

/** Holds data of its own: some replicated component is non-zero. */
export const hasRows = (clock: Vclock): boolean => vclockSum(clock) > 0;

/**
 * Candidate order, best first: a clock that dominates another comes first; incomparable clocks by
 * sum; then the lowest ordinal. Domination implies a greater sum, so sorting by (sum, ordinal) never
 * puts a replica before one that is ahead of it.
 */
export function byGreatestVclock(a: { vclock: Vclock; ordinal: number }, b: { vclock: Vclock; ordinal: number }): number {
  return vclockSum(b.vclock) - vclockSum(a.vclock) || a.ordinal - b.ordinal;
}

/** `{1: 42, 2: 3}` for reasons. */
export const formatVclock = (clock: Vclock): string => format(clock);
