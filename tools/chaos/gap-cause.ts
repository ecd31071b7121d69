// The longest stretch without an acknowledged write (all writers together) and the faults injected
// just before or during it: what a reader of the chaos summary asks first about an outage. Pure.
import type { WriteSummary } from '../workload.js';
import type { FaultOutcome } from './faults.js';

export interface GapCause {
  /** Seconds since the load started. */
  fromS: number;
  toS: number;
  seconds: number;
  /** Faults that started within `leadMs` before the gap or during it, e.g. "t+1787.1 s kill-master-tarantool: cs-1 (master)". */
  faults: string[];
}

/**
 * From the per-bucket timeline: the longest run of buckets without a success (null when there was
 * never a success, or no gap), with the injected faults that began up to `leadMs` before it or in it,
 * or whose window (a partition, a mesh cut, a frozen agent, an API outage) was still open `leadMs`
 * before it.
 * `chaosStartedAt` is the epoch ms the fault times (`t+…`) count from.
 */
export function longestGapCause(
  timeline: WriteSummary['timeline'],
  outcomes: readonly FaultOutcome[],
  chaosStartedAt: number,
  leadMs = 30_000,
): GapCause | null {
  const { startedAt, bucketMs, successes } = timeline;
  let best: { from: number; to: number } | null = null;
  let last: number | null = null;
  successes.forEach((n, i) => {
    if (n === 0) return;
    if (last !== null && i - last > 1 && (best === null || i - last > best.to - best.from)) best = { from: last + 1, to: i };
    last = i;
  });
  if (best === null) return null;
  const { from, to } = best as { from: number; to: number };
  const fromAt = startedAt + from * bucketMs;
  const toAt = startedAt + to * bucketMs;
  const faults = outcomes
    .filter((o) => o.done && o.at + o.fault.durationS * 1000 >= fromAt - leadMs && o.at <= toAt)
    .map((o) => `t+${((o.at - chaosStartedAt) / 1000).toFixed(1)} s ${o.fault.kind}${o.detail ? `: ${o.detail}` : ''}`);
  return { fromS: (fromAt - startedAt) / 1000, toS: (toAt - startedAt) / 1000, seconds: ((to - from) * bucketMs) / 1000, faults };
}
