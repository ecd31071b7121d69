// Two writable instances read from the write history (tools/write-terms.ts, pure): table cases for
// each finding, and a property: a history where terms follow each other in time (each failover claims
// a newer term before its master acknowledges) never reports one, whatever the interleaving.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkTerms, checkWriteTerms, type TermWrite } from '../../tools/write-terms.js';
import type { WriteLog } from '../../tools/workload.js';

const w = (instance: string, term: number, startedAt: number, endedAt: number, key = startedAt): TermWrite => ({ instance, term, startedAt, endedAt, key });

describe('checkTerms', () => {
  it.each([
    ['one master, one term', [w('a', 1, 0, 1), w('a', 1, 2, 3)], 0],
    ['a failover: the old term ends before the new one acknowledges', [w('a', 1, 0, 1), w('a', 1, 2, 3), w('b', 2, 5, 6)], 0],
    // the old master's write was admitted before the promote and confirmed by the new term's PROMOTE
    ['an old-term write acknowledged late, but started before any newer acknowledgement', [w('a', 1, 0, 9), w('b', 2, 5, 6)], 0],
    ['back to the first master in a newer term', [w('a', 1, 0, 1), w('b', 2, 2, 3), w('a', 3, 4, 5)], 0],
    ['two instances in one term', [w('a', 1, 0, 1), w('b', 1, 2, 3)], 1],
    ['an old-term write started after a newer term acknowledged', [w('b', 2, 0, 1), w('a', 1, 2, 3)], 1],
    ['an old-term write started after a much newer term acknowledged', [w('a', 1, 0, 1), w('c', 3, 2, 3), w('b', 2, 4, 5)], 1],
  ] as const)('%s: %i findings', (_name, writes, findings) => {
    expect(checkTerms(writes).violations).toHaveLength(findings);
  });

  it('names the instances, keys and terms of a finding', () => {
    const r = checkTerms([w('cs-1', 2, 0, 1, 7), w('cs-0', 1, 2, 3, 9)]);
    expect(r.violations[0]).toMatch(/cs-0 acknowledged key 9 in term 1, started at .* after cs-1 had acknowledged key 7 in newer term 2/);
    expect(r.terms.map((t) => t.term)).toEqual([1, 2]);
  });

  it('never reports a history whose terms follow each other in time', () => {
    // Each term: a master and a run of writes inside [start, end); the next term starts after it.
    const terms = fc.array(fc.record({ master: fc.constantFrom('a', 'b', 'c'), writes: fc.integer({ min: 1, max: 5 }), len: fc.integer({ min: 1, max: 50 }) }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(terms, fc.integer({ min: 0, max: 20 }), (ts, lateAck) => {
        const writes: TermWrite[] = [];
        let t0 = 0;
        ts.forEach((t, i) => {
          for (let k = 0; k < t.writes; k++) {
            const start = t0 + (k * t.len) / t.writes;
            // the last write of a term may be acknowledged late (confirmed by the next term's PROMOTE)
            writes.push(w(t.master, i + 1, start, start + (k === t.writes - 1 ? lateAck + 1 : 0.5)));
          }
          t0 += t.len + 1;
        });
        expect(checkTerms(writes).violations).toEqual([]);
      }),
    );
  });
});

describe('checkWriteTerms', () => {
  it('counts only acknowledged writes and says which carried no term', () => {
    const log: WriteLog = {
      space: 'load',
      intervalMs: 0,
      startedAt: 0,
      attempts: [
        { seq: 1, key: 1, startedAt: 0, endedAt: 1, ok: true, target: 'a', term: 4 },
        { seq: 2, key: 2, startedAt: 2, endedAt: 3, ok: false, errorKind: 'timeout', target: 'b' },
        { seq: 3, key: 3, startedAt: 4, endedAt: 5, ok: true, target: 'a', term: null },
      ],
    };
    const r = checkWriteTerms([log]);
    expect(r.checked).toBe(1);
    expect(r.withoutTerm).toBe(1);
    expect(r.violations).toEqual([]);
  });
});
