// The write mixes of the benchmarks and the chaos suite (tools/write-mix.ts) and the parts of the
// write load they rely on (tools/workload.ts): key ranges, the gap threshold of an unpaced writer,
// per-load summaries, the acknowledged keys of every writer. Pure, on hand-made logs; the one
// writer started here has no target, so it never opens a connection.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { acknowledgedKeys, defaultGapThresholdMs, firstAcknowledgedAfter, startWriteLoad, summarize, UNPACED_GAP_THRESHOLD_MS, type WriteAttempt, type WriteLog } from '../../tools/workload.js';
import { CONCURRENT_WRITERS, describeLoads, KEYS_PER_WRITER, mixKeySpan, planWriters, STANDARD_LOADS, summarizeLoad, summarizeMix } from '../../tools/write-mix.js';

/** A log of attempts from [startedAt, endedAt, ok] triples (ms after 1000), keys from firstKey. */
function logOf(rows: Array<[number, number, boolean]>, o: { intervalMs?: number; stoppedAt?: number; firstKey?: number } = {}): WriteLog {
  const attempts: WriteAttempt[] = rows.map(([s, e, ok], i) => ({
    seq: i + 1,
    key: (o.firstKey ?? 1) + i,
    startedAt: 1000 + s,
    endedAt: 1000 + e,
    ok,
    target: 'cs-0',
    ...(ok ? {} : { error: 'gone', errorKind: 'gone' as const }),
  }));
  return { space: 'load', intervalMs: o.intervalMs ?? 0, startedAt: 1000, stoppedAt: o.stoppedAt === undefined ? undefined : 1000 + o.stoppedAt, attempts };
}

describe('the gap threshold', () => {
  it('is two intervals for a paced writer and UNPACED_GAP_THRESHOLD_MS for an unpaced one', () => {
    expect(defaultGapThresholdMs(50)).toBe(100);
    expect(defaultGapThresholdMs(10)).toBe(20);
    expect(defaultGapThresholdMs(0)).toBe(UNPACED_GAP_THRESHOLD_MS);
    expect(UNPACED_GAP_THRESHOLD_MS).toBe(200);
  });

  it('an unpaced writer: ordinary write latencies are not unavailability, a stall is', () => {
    // Writes of 2–5 ms back to back, then one that waits 5 s (2.6.0's synchro stall), then more.
    const s = summarize(logOf([[0, 2, true], [2, 5, true], [5, 8, true], [8, 5008, true], [5008, 5010, true]], { stoppedAt: 5010 }));
    expect(s.gapThresholdMs).toBe(200);
    expect(s.gaps).toEqual([{ from: 1008, to: 6008, ms: 5000, failures: 0, open: false }]);
    expect(s).toMatchObject({ unavailableMs: 5000, longestGapMs: 5000, acknowledged: 5 });
  });

  it('an explicit threshold still wins', () => {
    expect(summarize(logOf([[0, 2, true], [2, 5, true]]), { gapThresholdMs: 1 }).gaps).toHaveLength(1);
  });
});

describe('planWriters', () => {
  it('the standard mix: a paced writer, an unpaced one and CONCURRENT_WRITERS concurrent ones', () => {
    const plan = planWriters(STANDARD_LOADS, 1);
    expect(plan.map((w) => [w.load, w.index, w.intervalMs])).toEqual([
      ['paced', 0, 50],
      ['unpaced', 0, 0],
      ...Array.from({ length: CONCURRENT_WRITERS }, (_, i) => ['concurrent', i, 0]),
    ]);
    expect(plan[0]).toMatchObject({ firstKey: 1, lastKey: KEYS_PER_WRITER });
    expect(plan[1]).toMatchObject({ firstKey: KEYS_PER_WRITER + 1 });
    expect(mixKeySpan(STANDARD_LOADS)).toBe((2 + CONCURRENT_WRITERS) * KEYS_PER_WRITER);
  });

  it('key ranges are disjoint, contiguous, and the next mix starts after mixKeySpan', () => {
    const loads = fc.array(fc.record({ writers: fc.integer({ min: 1, max: 8 }), intervalMs: fc.integer({ min: 0, max: 100 }) }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(loads, fc.integer({ min: 1, max: 1e12 }), fc.integer({ min: 1, max: 1e6 }), (specs, first, per) => {
        const named = specs.map((s, i) => ({ ...s, name: `l${i}` }));
        const plan = planWriters(named, first, per);
        expect(plan).toHaveLength(named.reduce((n, l) => n + l.writers, 0));
        plan.forEach((w, i) => {
          expect(w.lastKey - w.firstKey + 1).toBe(per);
          expect(w.firstKey).toBe(i === 0 ? first : (plan[i - 1]?.lastKey ?? NaN) + 1);
        });
        expect((plan.at(-1)?.lastKey ?? NaN) + 1).toBe(first + mixKeySpan(named, per));
      }),
    );
  });

  it('refuses a mix that cannot run', () => {
    expect(() => planWriters([], 1)).toThrow(/at least one writer/);
    expect(() => planWriters([{ name: 'a', intervalMs: 0, writers: 0 }], 1)).toThrow(/writers must be a positive integer/);
    expect(() => planWriters([{ name: 'a', intervalMs: -1, writers: 1 }], 1)).toThrow(/intervalMs must be >= 0/);
    expect(() => planWriters([{ name: 'a', intervalMs: 0, writers: 1 }, { name: 'a', intervalMs: 50, writers: 1 }], 1)).toThrow(/two loads named a/);
    expect(() => planWriters(STANDARD_LOADS, 0)).toThrow(/firstKey/);
    expect(() => planWriters(STANDARD_LOADS, Number.MAX_SAFE_INTEGER - 10)).toThrow(/MAX_SAFE_INTEGER/);
  });
});

describe('several writers', () => {
  const a = logOf([[0, 2, true], [2, 4, false], [14, 16, true]], { firstKey: 101, stoppedAt: 1000 });
  const b = logOf([[0, 3, true], [3, 300, true], [300, 302, true]], { firstKey: 201, stoppedAt: 1000 });

  it('acknowledgedKeys covers every writer (the keys verify looks for), failed writes excluded', () => {
    expect(acknowledgedKeys([a, b])).toEqual([101, 103, 201, 202, 203]);
    expect(acknowledgedKeys(a)).toEqual([101, 103]);
  });

  it('firstAcknowledgedAfter across writers: the earliest acknowledgement of any of them', () => {
    expect(firstAcknowledgedAfter([b, a], 1002)).toMatchObject({ key: 103, endedAt: 1016 });
    expect(firstAcknowledgedAfter([a, b], 1301)).toBeUndefined();
  });

  it('summarizeLoad: writes/s over the load, the worst writer for gaps', () => {
    const s = summarizeLoad('concurrent', [a, b]);
    expect(s).toMatchObject({ name: 'concurrent', writers: 2, attempted: 6, acknowledged: 5, failed: 1, durationMs: 1000, writesPerS: 5, errors: { gone: 1 }, exhausted: 0 });
    // b waited 297 ms for its second write (over 200 ms); a's open tail after its last write is not a failure gap.
    expect(s.longestGapMs).toBe(297);
    expect(s.unavailableMs).toBe(297);
    expect(s.gaps).toBe(1);
  });

  it('summarizeMix: a summary per load, totals, one timeline of every writer', () => {
    const plans = planWriters([{ name: 'paced', intervalMs: 50, writers: 1 }, { name: 'unpaced', intervalMs: 0, writers: 1 }], 1);
    const m = summarizeMix([
      { plan: plans[0]!, log: { ...a, intervalMs: 50 } },
      { plan: plans[1]!, log: b },
    ]);
    expect(m.loads.map((l) => [l.name, l.acknowledged, l.gapThresholdMs])).toEqual([
      ['paced', 2, 100],
      ['unpaced', 3, 200],
    ]);
    expect(m).toMatchObject({ attempted: 6, acknowledged: 5, failed: 1, longestGapMs: 297 });
    expect(m.timeline.successes.reduce((x, y) => x + y, 0)).toBe(5);
    expect(describeLoads(m.loads)).toContain('unpaced (1 writer, unpaced): 3 acknowledged, 3 writes/s, longest gap 0.30 s, 0 failed');
  });
});

describe('startWriteLoad with intervalMs 0 and a key range', () => {
  it('stops when its range is used up, having written no key past it', async () => {
    // No target: every attempt fails at once (no connection), each uses a key; the backoff starts at 10 ms.
    const load = startWriteLoad({ target: async () => null, space: 'load', intervalMs: 0, firstKey: 7, lastKey: 9 });
    const summary = await waitStopped(load.log, () => load.stop());
    expect(load.log.exhausted).toBe(true);
    expect(load.log.attempts.map((x) => x.key)).toEqual([7, 8, 9]);
    expect(summary).toMatchObject({ attempted: 3, acknowledged: 0, errors: { 'no-target': 3 } });
  });
});

/** Waits (bounded: 5 s) until the writer has used its range up, then stops it. */
async function waitStopped<T>(log: WriteLog, stop: () => Promise<T>): Promise<T> {
  const until = Date.now() + 5_000;
  while (log.exhausted !== true && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  return stop();
}
