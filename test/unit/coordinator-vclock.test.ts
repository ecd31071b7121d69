import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byGreatestVclock, compareVclocks, componentsAhead, covers, formatVclock, isAhead, vclockSum } from '../../agent/coordinator/vclock.js';

const vclock = fc.dictionary(fc.constantFrom('0', '1', '2', '3'), fc.nat({ max: 20 }));

describe('vclock', () => {
  it.each([
    [{ 1: 5 }, { 1: 5 }, 'equal'],
    [{ 1: 5 }, { 1: 5, 2: 0 }, 'equal'],
    [{ 1: 6 }, { 1: 5 }, 'greater'],
    [{ 1: 5 }, { 1: 5, 2: 1 }, 'less'],
    [{ 1: 6 }, { 1: 5, 2: 1 }, 'concurrent'],
    [{ 0: 99, 1: 5 }, { 1: 5 }, 'equal'],
    [{}, {}, 'equal'],
  ])('%j vs %j: %s', (a, b, order) => expect(compareVclocks(a, b)).toBe(order));

  it('formats and finds what one has that the other lacks', () => {
    expect(formatVclock({ 2: 3, 1: 42 })).toBe('{1: 42, 2: 3}');
    expect(componentsAhead({ 0: 9, 1: 7, 2: 5 }, { 1: 7, 2: 4 })).toEqual(['2']);
    expect(componentsAhead({ 1: 8, 2: 5 }, { 1: 7, 2: 4 }, ['1'])).toEqual(['2']);
  });

  it('comparison is antisymmetric and covers/isAhead agree with it', () => {
    fc.assert(
      fc.property(vclock, vclock, (a, b) => {
        const ab = compareVclocks(a, b);
        const ba = compareVclocks(b, a);
        const mirror = { equal: 'equal', less: 'greater', greater: 'less', concurrent: 'concurrent' } as const;
        return ba === mirror[ab] && covers(a, b) === (ab === 'equal' || ab === 'greater') && isAhead(a, b) === (ab === 'greater');
      }),
    );
  });

  it('the best candidate is never one another is ahead of', () => {
    const candidates = fc.array(fc.record({ vclock, ordinal: fc.nat({ max: 9 }) }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(candidates, (cs) => {
        const best = [...cs].sort(byGreatestVclock)[0];
        return best !== undefined && cs.every((c) => !isAhead(c.vclock, best.vclock)) && cs.every((c) => vclockSum(c.vclock) <= vclockSum(best.vclock));
      }),
    );
  });
});
