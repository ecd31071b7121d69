import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayFilter } from '../../agent/mesh/replay.js';
import { TermGuard, judgeTerm, judgeVerified, type KnownTerm } from '../../agent/mesh/terms.js';

describe('term fencing rule', () => {
  it('refuses older terms, accepts the current one from its holder, verifies newer ones', () => {
    const known: KnownTerm = { term: 5, holder: 'a' };
    expect(judgeTerm(known, 4, 'a')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('stale term 4') });
    expect(judgeTerm(known, 5, 'a')).toEqual({ verdict: 'accept' });
    expect(judgeTerm(known, 5, 'b')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('belongs to a') });
    expect(judgeTerm(known, 6, 'b')).toEqual({ verdict: 'verify' });
    expect(judgeTerm({ term: 5, holder: null }, 5, 'b')).toEqual({ verdict: 'accept' });
  });

  it('never accepts a term below the known one (property)', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), fc.constantFrom('a', 'b'), (known, term, from) => {
        const v = judgeTerm({ term: known, holder: 'a' }, term, from);
        if (term < known) expect(v.verdict).toBe('refuse');
        if (term > known) expect(v.verdict).toBe('verify');
      }),
    );
  });

  it('after verification, accepts only the exact persisted term of the persisted holder', () => {
    expect(judgeVerified({ term: 7, holder: 'b' }, 7, 'b')).toEqual({ verdict: 'accept' });
    expect(judgeVerified({ term: 8, holder: 'c' }, 7, 'b')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('stale') });
    expect(judgeVerified({ term: 6, holder: 'a' }, 7, 'b')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('not persisted') });
    expect(judgeVerified({ term: 7, holder: 'c' }, 7, 'b')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('belongs to c') });
  });
});

describe('TermGuard', () => {
  it('asks the authority once per new term and raises its known term', async () => {
    let calls = 0;
    const guard = new TermGuard(async () => {
      calls++;
      return { term: 3, holder: 'b' };
    });
    guard.observe(2, 'a');
    const [x, y] = await Promise.all([guard.check(3, 'b'), guard.check(3, 'b')]);
    expect(x).toEqual({ verdict: 'accept' });
    expect(y).toEqual({ verdict: 'accept' });
    expect(calls).toBe(1);
    expect(guard.current).toEqual({ term: 3, holder: 'b' });
    expect(await guard.check(2, 'a')).toMatchObject({ verdict: 'refuse' });
    expect(calls).toBe(1);
  });

  it('refuses an invented term the authority does not confirm, without raising its own', async () => {
    const guard = new TermGuard(async () => ({ term: 3, holder: 'b' }));
    guard.observe(3, 'b');
    expect(await guard.check(99, 'mallory')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('not persisted') });
    expect(guard.current.term).toBe(3);
    expect(await guard.check(3, 'b')).toEqual({ verdict: 'accept' });
  });

  it('refuses (transiently) when the authority cannot be asked', async () => {
    const guard = new TermGuard(async () => {
      throw new Error('API server down');
    });
    expect(await guard.check(1, 'a')).toMatchObject({ verdict: 'refuse', reason: expect.stringContaining('API server down') });
  });

  it('without an authority, trusts an authenticated newer term and fences the old one', async () => {
    const guard = new TermGuard(undefined);
    expect(await guard.check(4, 'b')).toEqual({ verdict: 'accept' });
    expect(await guard.check(3, 'a')).toMatchObject({ verdict: 'refuse' });
  });

  it('never lowers its term', () => {
    const guard = new TermGuard(undefined);
    guard.observe(5, 'a');
    guard.observe(4, 'b');
    expect(guard.current).toEqual({ term: 5, holder: 'a' });
  });
});

describe('ReplayFilter', () => {
  const ack = { type: 'ack' as const, v: 1, id: 'x', ok: true };
  it('admits an id once; a replay sees running, then the recorded ack', () => {
    const f = new ReplayFilter();
    expect(f.admit('x')).toEqual({ state: 'new' });
    expect(f.admit('x')).toEqual({ state: 'running' });
    f.complete('x', ack);
    expect(f.admit('x')).toEqual({ state: 'done', ack });
    f.forget('x');
    expect(f.admit('x')).toEqual({ state: 'new' });
  });

  it('is bounded: the oldest ids are forgotten first', () => {
    const f = new ReplayFilter(3);
    for (const id of ['a', 'b', 'c', 'd']) f.admit(id);
    expect(f.admit('a')).toEqual({ state: 'new' });
    expect(f.admit('d')).toEqual({ state: 'running' });
  });
});
