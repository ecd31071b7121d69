// The chaos summary's answer to "why did writes stop?": the longest stretch without an acknowledged
// write and the faults that began just before or during it.
import { describe, expect, it } from 'vitest';
import { longestGapCause } from '../../tools/chaos/gap-cause.js';
import type { FaultOutcome } from '../../tools/chaos/faults.js';

const T0 = 1_000_000;
const outcome = (atS: number, kind: FaultOutcome['fault']['kind'], detail: string, done = true): FaultOutcome => ({
  fault: { atS, kind, pick: 0.5, durationS: 0 },
  at: T0 + atS * 1000,
  done,
  detail,
});

describe('longestGapCause', () => {
  const timeline = { startedAt: T0, bucketMs: 100, successes: [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1], failures: [] as number[] };

  it('finds the longest run of buckets without a success and the faults that began shortly before or in it', () => {
    const faults = [outcome(0.1, 'api-down', 'for 5 s'), outcome(0.55, 'kill-master-tarantool', 'cs-1 (master)'), outcome(0.7, 'partition', 'skipped', false), outcome(5, 'delete-pod', 'cs-0')];
    const gap = longestGapCause(timeline, faults, T0, 300);
    expect(gap).toEqual({ fromS: 0.5, toS: 1, seconds: 0.5, faults: ['t+0.6 s kill-master-tarantool: cs-1 (master)'] });
  });

  it('names a windowed fault that began long before the gap but was still open', () => {
    const frozen: FaultOutcome = { fault: { atS: 0, kind: 'freeze-agent', pick: 0.1, durationS: 10 }, at: T0 - 9_000, done: true, detail: 'cs-1 (master) agent stopped for 10 s' };
    const over: FaultOutcome = { ...frozen, fault: { ...frozen.fault, durationS: 1 }, detail: 'over long before' };
    const gap = longestGapCause(timeline, [frozen, over], T0, 300);
    expect(gap?.faults).toEqual(['t+-9.0 s freeze-agent: cs-1 (master) agent stopped for 10 s']);
  });

  it('says nothing when writes never stopped or never started', () => {
    expect(longestGapCause({ ...timeline, successes: [1, 1, 1] }, [], T0)).toBeNull();
    expect(longestGapCause({ ...timeline, successes: [0, 0, 0] }, [], T0)).toBeNull();
  });
});
