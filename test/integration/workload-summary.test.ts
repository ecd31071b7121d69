// summarize() of the write load on hand-made logs: where gaps start and end, what counts as
// unavailable, the timeline buckets. Pure, no Tarantool (it lives with the workload tests).
import { describe, expect, it } from 'vitest';
import { firstAcknowledgedAfter, summarize, type WriteAttempt, type WriteLog } from '../../tools/workload.js';

/** Attempts from [startedAt, endedAt, ok] triples, relative to t = 1000. */
function logOf(rows: Array<[number, number, boolean]>, stoppedAt?: number): WriteLog {
  const attempts: WriteAttempt[] = rows.map(([s, e, ok], i) => ({
    seq: i + 1,
    key: i + 1,
    startedAt: 1000 + s,
    endedAt: 1000 + e,
    ok,
    target: 'storage-0',
    ...(ok ? {} : { error: 'gone', errorKind: 'gone' as const }),
  }));
  return { space: 'sync', intervalMs: 10, startedAt: 1000, stoppedAt: stoppedAt === undefined ? undefined : 1000 + stoppedAt, attempts };
}

describe('summarize', () => {
  it('a steady load: gaps between acknowledgements, none over 2 × interval', () => {
    const s = summarize(logOf([[0, 1, true], [10, 11, true], [20, 22, true]], 30));
    expect(s).toMatchObject({ attempted: 3, acknowledged: 3, failed: 0, longestGapMs: 11, unavailableMs: 0, gaps: [], gapThresholdMs: 20, durationMs: 30 });
  });

  it('an outage counts from the first failed attempt to the next acknowledgement', () => {
    const s = summarize(logOf([[0, 1, true], [10, 12, false], [20, 21, false], [200, 250, true], [260, 261, true]], 300));
    expect(s.gaps).toEqual([{ from: 1010, to: 1250, ms: 240, failures: 2, open: false }]);
    expect(s).toMatchObject({ longestGapMs: 240, unavailableMs: 240, failed: 2, errors: { gone: 2 } });
  });

  it('a slow acknowledged write is a gap without failures', () => {
    const s = summarize(logOf([[0, 1, true], [10, 500, true]], 510));
    expect(s.gaps).toEqual([{ from: 1001, to: 1500, ms: 499, failures: 0, open: false }]);
  });

  it('failures before the first acknowledgement and at the end open gaps too', () => {
    const s = summarize(logOf([[0, 5, false], [50, 60, true], [70, 71, false]], 400));
    expect(s.gaps).toEqual([
      { from: 1000, to: 1060, ms: 60, failures: 1, open: false },
      { from: 1070, to: 1400, ms: 330, failures: 1, open: true },
    ]);
    expect(s.unavailableMs).toBe(390);
  });

  it('timeline: acknowledgements and failures per bucket by the time they ended', () => {
    const s = summarize(logOf([[0, 50, true], [60, 99, true], [100, 150, false], [250, 299, true]], 300), { bucketMs: 100 });
    expect(s.timeline).toEqual({ startedAt: 1000, bucketMs: 100, successes: [2, 0, 1], failures: [0, 1, 0] });
  });

  it('an empty log', () => {
    const s = summarize({ space: 'sync', intervalMs: 10, startedAt: 1000, stoppedAt: 1000, attempts: [] });
    expect(s).toMatchObject({ attempted: 0, longestGapMs: 0, unavailableMs: 0, gaps: [] });
    expect(s.timeline.successes).toEqual([0]);
  });

  it('firstAcknowledgedAfter skips writes that started before the moment', () => {
    const log = logOf([[0, 30, true], [10, 12, false], [40, 41, true]]);
    expect(firstAcknowledgedAfter(log, 1005)?.key).toBe(3);
  });
});
