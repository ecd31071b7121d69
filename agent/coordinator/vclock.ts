import type { Vclock } from './model.js';

// Vector clock arithmetic. Component "0" counts rows of local spaces, which are never replicated:
// it says nothing about what one instance has that another lacks, so every comparison ignores it.

const LOCAL_COMPONENT = '0';

export type VclockOrder = 'equal' | 'less' | 'greater' | 'concurrent';

function replicatedComponents(...clocks: Vclock[]): string[] {
  const keys = new Set<string>();
  for (const clock of clocks) for (const key of Object.keys(clock)) if (key !== LOCAL_COMPONENT) keys.add(key);
  return [...keys];
}

const lsn = (clock: Vclock, key: string): number => clock[key] ?? 0;

/** Component-wise order of `a` relative to `b`. */
export function compareVclocks(a: Vclock, b: Vclock): VclockOrder {
  let aAhead = false;
  let bAhead = false;
  for (const key of replicatedComponents(a, b)) {
    if (lsn(a, key) > lsn(b, key)) aAhead = true;
    if (lsn(b, key) > lsn(a, key)) bAhead = true;
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'greater';
  if (bAhead) return 'less';
  return 'equal';
}

/** `a` has everything `b` has (equal or greater). */
export const covers = (a: Vclock, b: Vclock): boolean => {
  const order = compareVclocks(a, b);
  return order === 'equal' || order === 'greater';
};

/** `a` has everything `b` has and more. */
export const isAhead = (a: Vclock, b: Vclock): boolean => compareVclocks(a, b) === 'greater';

export function vclockSum(clock: Vclock): number {
  return replicatedComponents(clock).reduce((sum, key) => sum + lsn(clock, key), 0);
}

/** The components in which `a` has rows `b` lacks, skipping `ignore` (e.g. the master's own). */
export function componentsAhead(a: Vclock, b: Vclock, ignore: readonly string[] = []): string[] {
  return replicatedComponents(a, b)
    .filter((key) => !ignore.includes(key) && lsn(a, key) > lsn(b, key))
    .sort((x, y) => Number(x) - Number(y));
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
export function formatVclock(clock: Vclock): string {
  const parts = Object.keys(clock)
    .sort((x, y) => Number(x) - Number(y))
    .map((key) => `${key}: ${lsn(clock, key)}`);
  return `{${parts.join(', ')}}`;
}
