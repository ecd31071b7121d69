// Pure vclock arithmetic, the one vocabulary of vclock order for the decision core and the instance
// manager alike. A vclock maps a replica id (as a string, the way JSON and the console
// carry it) to the LSN of that instance's own writes; a missing component is 0. Component 0 (local
// spaces) never takes part: shoal.lua leaves it out.
export type Vclock = Readonly<Record<string, number>>;

export type VclockOrder = 'equal' | 'before' | 'after' | 'concurrent';

/** LSN of component `id` (0 when absent). */
export function lsnOf(v: Vclock, id: number | string): number {
  return v[String(id)] ?? 0;
}

function components(...vs: Vclock[]): string[] {
  const keys = new Set<string>();
  for (const v of vs) for (const [k, lsn] of Object.entries(v)) if (lsn > 0 && k !== '0') keys.add(k);
  return [...keys];
}

/** True when `a` has everything `b` has: a[i] >= b[i] for every component. */
export function covers(a: Vclock, b: Vclock): boolean {
  return components(b).every((k) => lsnOf(a, k) >= lsnOf(b, k));
}

/** Causal order of two vclocks. */
export function compare(a: Vclock, b: Vclock): VclockOrder {
  const ab = covers(a, b);
  const ba = covers(b, a);
  if (ab && ba) return 'equal';
  if (ab) return 'after';
  if (ba) return 'before';
  return 'concurrent';
}

/** `a` has everything `b` has and more. */
export const dominates = (a: Vclock, b: Vclock): boolean => compare(a, b) === 'after';

/** True when `a` has writes of instance `component` that `b` lacks. */
export function isAheadOf(a: Vclock, b: Vclock, component: number | string): boolean {
  return lsnOf(a, component) > lsnOf(b, component);
}

/**
 * TARANTOOL.md "No split-brain detection": an old master (replica id `ownId`) whose own component
 * is ahead of what the new master has of it holds writes the new master never received. Rejoining
 * it as is merges them silently, diverges silently (same-key replace) or stops replication
 * (duplicate key); it must be rebootstrapped instead.
 */
export function hasDiverged(oldMaster: Vclock, newMaster: Vclock, ownId: number): boolean {
  return isAheadOf(oldMaster, newMaster, ownId);
}

/** The components in which `a` is ahead of `b`, with both LSNs (for reasons and logs). */
export function aheadComponents(a: Vclock, b: Vclock): Array<{ id: number; lsn: number; other: number }> {
  return components(a)
    .filter((k) => isAheadOf(a, b, k))
    .map((k) => ({ id: Number(k), lsn: lsnOf(a, k), other: lsnOf(b, k) }))
    .sort((x, y) => x.id - y.id);
}

/** Sum of all components: Tarantool's "signature", a total order that agrees with `covers`. */
export function signature(v: Vclock): number {
  return components(v).reduce((sum, k) => sum + lsnOf(v, k), 0);
}

/** Holds data of its own: some replicated component is non-zero. */
export const hasRows = (v: Vclock): boolean => signature(v) > 0;

/**
 * Candidate order, best first: a clock that dominates another comes first; incomparable clocks by
 * signature; then the lowest ordinal. Domination implies a greater signature, so sorting by
 * (signature, ordinal) never puts a replica before one that is ahead of it.
 */
export function byGreatestVclock(a: { vclock: Vclock; ordinal: number }, b: { vclock: Vclock; ordinal: number }): number {
  return signature(b.vclock) - signature(a.vclock) || a.ordinal - b.ordinal;
}

/** Component-wise maximum. */
export function merge(...vs: Vclock[]): Vclock {
  const out: Record<string, number> = {};
  for (const k of components(...vs)) out[k] = Math.max(...vs.map((v) => lsnOf(v, k)));
  return out;
}

/** A short human form, "{1: 17, 2: 7}" as in Tarantool's file headers. */
export function formatVclock(v: Vclock): string {
  const parts = components(v)
    .map(Number)
    .sort((a, b) => a - b)
    .map((k) => `${k}: ${lsnOf(v, k)}`);
  return `{${parts.join(', ')}}`;
}
