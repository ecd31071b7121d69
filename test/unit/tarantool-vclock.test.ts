import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { aheadComponents, byGreatestVclock, compare, covers, dominates, formatVclock, hasDiverged, isAheadOf, merge, signature, type Vclock } from '../../agent/tarantool/vclock.js';

const vclockArb: fc.Arbitrary<Vclock> = fc.dictionary(
  fc.integer({ min: 1, max: 6 }).map(String),
  fc.integer({ min: 0, max: 50 }),
  { maxKeys: 6 },
);

describe('vclock', () => {
  it('treats missing components as 0 and ignores component 0', () => {
    expect(covers({ '1': 3 }, { '1': 3, '2': 0 })).toBe(true);
    expect(covers({ '1': 3 }, { '0': 9 })).toBe(true);
    expect(compare({}, { '1': 0 })).toBe('equal');
    expect(formatVclock({ '2': 7, '1': 17, '0': 3 })).toBe('{1: 17, 2: 7}');
  });

  it('detects an old master that has writes the new master lacks (TARANTOOL.md cases)', () => {
    // Old master id 1 wrote up to 5, the new master (id 2) received only up to 4 of it, then wrote its own.
    const oldMaster = { '1': 5 };
    const newMaster = { '1': 4, '2': 2 };
    expect(hasDiverged(oldMaster, newMaster, 1)).toBe(true);
    expect(compare(oldMaster, newMaster)).toBe('concurrent');
    expect(aheadComponents(oldMaster, newMaster)).toEqual([{ id: 1, lsn: 5, other: 4 }]);
    // Nothing lost: it may rejoin as is.
    expect(hasDiverged({ '1': 4 }, newMaster, 1)).toBe(false);
  });

  it('covers is reflexive and transitive; compare is antisymmetric', () => {
    fc.assert(
      fc.property(vclockArb, vclockArb, vclockArb, (a, b, c) => {
        expect(covers(a, a)).toBe(true);
        if (covers(a, b) && covers(b, c)) expect(covers(a, c)).toBe(true);
        const flip = { equal: 'equal', before: 'after', after: 'before', concurrent: 'concurrent' } as const;
        expect(compare(b, a)).toBe(flip[compare(a, b)]);
      }),
    );
  });

  it('compare agrees with covers and with signature', () => {
    fc.assert(
      fc.property(vclockArb, vclockArb, (a, b) => {
        const order = compare(a, b);
        expect(order === 'after' || order === 'equal').toBe(covers(a, b));
        if (order === 'after') expect(signature(a)).toBeGreaterThan(signature(b));
        if (order === 'equal') expect(signature(a)).toBe(signature(b));
      }),
    );
  });

  it('merge is the least upper bound', () => {
    fc.assert(
      fc.property(vclockArb, vclockArb, (a, b) => {
        const m = merge(a, b);
        expect(covers(m, a) && covers(m, b)).toBe(true);
        for (const k of Object.keys(m)) expect(m[k]).toBe(Math.max(a[k] ?? 0, b[k] ?? 0));
      }),
    );
  });

  it('diverged means exactly: own component ahead of what the other has', () => {
    fc.assert(
      fc.property(vclockArb, vclockArb, fc.integer({ min: 1, max: 6 }), (oldM, newM, id) => {
        expect(hasDiverged(oldM, newM, id)).toBe((oldM[String(id)] ?? 0) > (newM[String(id)] ?? 0));
        expect(isAheadOf(oldM, newM, id)).toBe(hasDiverged(oldM, newM, id));
        // If the new master covers the old one, nothing can have diverged.
        if (covers(newM, oldM)) expect(hasDiverged(oldM, newM, id)).toBe(false);
        // If any component is ahead, covers fails, and aheadComponents names it.
        expect(aheadComponents(oldM, newM).length === 0).toBe(covers(newM, oldM));
      }),
    );
  });
});

const vclock = fc.dictionary(fc.constantFrom('0', '1', '2', '3'), fc.nat({ max: 20 }));

describe('vclock order, as the decision core uses it', () => {
  it.each([
    [{ 1: 5 }, { 1: 5 }, 'equal'],
    [{ 1: 5 }, { 1: 5, 2: 0 }, 'equal'],
    [{ 1: 6 }, { 1: 5 }, 'after'],
    [{ 1: 5 }, { 1: 5, 2: 1 }, 'before'],
    [{ 1: 6 }, { 1: 5, 2: 1 }, 'concurrent'],
    [{ 0: 99, 1: 5 }, { 1: 5 }, 'equal'],
    [{}, {}, 'equal'],
  ])('%j vs %j: %s', (a, b, order) => expect(compare(a, b)).toBe(order));

  it('formats and finds what one has that the other lacks', () => {
    expect(formatVclock({ 2: 3, 1: 42 })).toBe('{1: 42, 2: 3}');
    expect(aheadComponents({ 0: 9, 1: 7, 2: 5 }, { 1: 7, 2: 4 })).toEqual([{ id: 2, lsn: 5, other: 4 }]);
  });

  it('comparison is antisymmetric and covers/dominates agree with it', () => {
    fc.assert(
      fc.property(vclock, vclock, (a, b) => {
        const ab = compare(a, b);
        const ba = compare(b, a);
        const mirror = { equal: 'equal', before: 'after', after: 'before', concurrent: 'concurrent' } as const;
        return ba === mirror[ab] && covers(a, b) === (ab === 'equal' || ab === 'after') && dominates(a, b) === (ab === 'after');
      }),
    );
  });

  it('the best candidate is never one another is ahead of', () => {
    const candidates = fc.array(fc.record({ vclock, ordinal: fc.nat({ max: 9 }) }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(candidates, (cs) => {
        const best = [...cs].sort(byGreatestVclock)[0];
        return best !== undefined && cs.every((c) => !dominates(c.vclock, best.vclock)) && cs.every((c) => signature(c.vclock) <= signature(best.vclock));
      }),
    );
  });
});
