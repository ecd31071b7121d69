// The workload's history for Porcupine (pure): what each outcome means, the order, the final reads,
// and how the checker's verdict line is read.
import { describe, expect, it } from 'vitest';
import { parseVerdict } from '../../tools/chaos/linearizability.js';
import { countHistory, finalReads, historyOf, writeOutcome } from '../../tools/history.js';
import { RecentKeys, type WriteLog } from '../../tools/workload.js';

const log = (over: Partial<WriteLog>): WriteLog => ({ space: 'load', intervalMs: 0, startedAt: 0, attempts: [], reads: [], ...over });

describe('writeOutcome', () => {
  it('is failed only when the write certainly did not happen', () => {
    expect(writeOutcome({ ok: true })).toBe('ok');
    expect(writeOutcome({ ok: false, errorKind: 'no-target' })).toBe('failed');
    expect(writeOutcome({ ok: false, errorKind: 'lua', error: "Can't modify data on a read-only instance - box.cfg.read_only is true" })).toBe('failed');
    // a quorum timeout or rollback may still be confirmed by a new leader's PROMOTE
    expect(writeOutcome({ ok: false, errorKind: 'lua', error: 'Quorum collection for a synchronous transaction is timed out' })).toBe('unknown');
    for (const k of ['timeout', 'gone', 'protocol', 'aborted', 'other'] as const) expect(writeOutcome({ ok: false, errorKind: k })).toBe('unknown');
  });
});

describe('historyOf', () => {
  const a = log({
    attempts: [
      { seq: 1, key: 10, startedAt: 1, endedAt: 2, ok: true, target: 'cs-0' },
      { seq: 2, key: 11, startedAt: 3, endedAt: 9, ok: false, errorKind: 'timeout', error: 'timed out', target: 'cs-0' },
    ],
    reads: [{ key: 10, startedAt: 2.5, endedAt: 2.75, ok: true, value: 1, target: 'cs-0' }],
  });
  const b = log({ attempts: [{ seq: 1, key: 100, startedAt: 0.5, endedAt: 1.5, ok: false, errorKind: 'no-target', target: null }] });

  it('turns puts and gets into operations in microseconds, ordered by call, one client per writer', () => {
    expect(historyOf([a, b])).toEqual([
      { client: 1, kind: 'put', key: 100, value: 1, call: 500, return: 1500, outcome: 'failed', instance: null },
      { client: 0, kind: 'put', key: 10, value: 1, call: 1000, return: 2000, outcome: 'ok', instance: 'cs-0' },
      { client: 0, kind: 'get', key: 10, value: 1, call: 2500, return: 2750, outcome: 'ok', instance: 'cs-0' },
      { client: 0, kind: 'put', key: 11, value: 2, call: 3000, return: null, outcome: 'unknown', instance: 'cs-0' },
    ]);
  });

  it('reads the final state as one get per attempted key, by a client of its own', () => {
    const final = finalReads([a, b], new Set([10, 11]), 50, 60, 'cs-1');
    expect(final.map((o) => [o.client, o.key, o.value])).toEqual([
      [2, 10, 1],
      [2, 11, 2],
      [2, 100, null],
    ]);
    expect(countHistory([...historyOf([a, b]), ...final])).toEqual({ puts: 3, gets: 4, ok: 5, failed: 1, unknown: 1 });
  });
});

describe('RecentKeys', () => {
  it('keeps the last keys only and picks among them', () => {
    const r = new RecentKeys(3);
    expect(r.pick(0.5)).toBeUndefined();
    for (const k of [1, 2, 3, 4, 5]) r.add(k);
    expect(new Set([0, 0.4, 0.7, 0.99].map((p) => r.pick(p)))).toEqual(new Set([3, 4, 5]));
  });
});

describe('parseVerdict', () => {
  it('reads the checker line and its exit code; anything else is unknown', () => {
    expect(parseVerdict(0, 'linearizability: OK: 5 operations\n')).toEqual({ verdict: 'ok', detail: 'OK: 5 operations' });
    expect(parseVerdict(1, 'linearizability: VIOLATED on 1 keys\n').verdict).toBe('violated');
    expect(parseVerdict(2, 'linearizability: UNKNOWN: bad history\n')).toEqual({ verdict: 'unknown', detail: 'UNKNOWN: bad history' });
    expect(parseVerdict(0, '')).toEqual({ verdict: 'unknown', detail: 'the checker exited with 0: ' });
    expect(parseVerdict(null, '', 'spawn ENOENT').detail).toContain('ENOENT');
  });
});
