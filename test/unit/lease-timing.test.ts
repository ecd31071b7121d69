import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TIMINGS,
  acquireRetryDelayMs,
  judgeAcquire,
  leadershipValid,
  nextRecord,
  observe,
  releasedRecord,
  renewRequestBudgetMs,
  validateTimings,
  type LeaseRecord,
} from '../../agent/lease/timing.js';

const rec = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: 'a',
  leaseDurationSeconds: 15,
  acquireTime: '2024-01-01T00:00:00.000000Z',
  renewTime: '2024-01-01T00:00:10.000000Z',
  leaseTransitions: 2,
  ...over,
});

describe('election timing relations', () => {
  it('accepts the client-go defaults', () => {
    expect(validateTimings(DEFAULT_TIMINGS)).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it.each([
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'must be greater than renewDeadline'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 }, 'must be greater than 1.2 × retryPeriod'],
    [{ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'whole seconds'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }, 'positive'],
    [{ leaseDurationMs: Number.NaN, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'positive'],
  ])('rejects %j with a clear error and a fix', (t, msg) => {
    expect(() => validateTimings(t)).toThrow(msg);
    expect(() => validateTimings(t)).toThrow('fix:');
  });

  it('any valid triple steps a leader down before anyone else may take over (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 60_000 }), (leaseS, renew, retry) => {
        const t = { leaseDurationMs: leaseS * 1000, renewDeadlineMs: renew, retryPeriodMs: retry };
        let ok = true;
        try {
          validateTimings(t);
        } catch {
          ok = false;
        }
        if (!ok) return;
        // The leader's renewal request started at 0; the server applied it at some w >= 0; another pod
        // observes it at o >= w. The leader stops at renewDeadline; the other may take over at o + lease.
        const leaderStops = t.renewDeadlineMs;
        const earliestTakeover = 0 + leaseS * 1000;
        expect(leaderStops).toBeLessThan(earliestTakeover);
        expect(leadershipValid(0, leaderStops, t)).toBe(false);
        expect(leadershipValid(0, leaderStops - 1, t)).toBe(true);
      }),
    );
  });
});

describe('acquire rule (local observation, not remote clocks)', () => {
  it('measures expiry from when we first observed the record, ignoring its timestamps', () => {
    const r = rec({ renewTime: '1999-01-01T00:00:00.000000Z' }); // a skewed writer clock changes nothing
    const o = observe(undefined, r, 1_000);
    expect(judgeAcquire(r, o, 'b', 1_000 + 14_999, false)).toMatchObject({ acquire: false });
    expect(judgeAcquire(r, o, 'b', 1_000 + 15_000, false)).toMatchObject({ acquire: true, takeover: true });
  });

  it('restarts the clock whenever the record changes', () => {
    const o1 = observe(undefined, rec(), 0);
    const same = observe(o1, rec(), 10_000);
    expect(same.atMs).toBe(0);
    const renewed = observe(same, rec({ renewTime: '2024-01-01T00:00:12.000000Z' }), 12_000);
    expect(renewed.atMs).toBe(12_000);
    expect(judgeAcquire(rec({ renewTime: '2024-01-01T00:00:12.000000Z' }), renewed, 'b', 20_000, false)).toMatchObject({ acquire: false });
  });

  it('acquires a free (released) lease at once, and its own lease while leading', () => {
    const free = rec({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(judgeAcquire(free, observe(undefined, free, 0), 'b', 0, false)).toMatchObject({ acquire: true, takeover: true });
    expect(judgeAcquire(rec(), observe(undefined, rec(), 0), 'a', 0, true)).toMatchObject({ acquire: true, takeover: false });
  });

  it('treats its own name in the record as an earlier process of its pod when not leading: waits for expiry', () => {
    const o = observe(undefined, rec(), 1_000); // a restarted agent sees the record its predecessor renewed
    expect(judgeAcquire(rec(), o, 'a', 1_000 + 14_999, false)).toMatchObject({ acquire: false });
    expect(judgeAcquire(rec(), o, 'a', 1_000 + 15_000, false)).toMatchObject({ acquire: true, takeover: true });
  });

  it('uses the lease duration written in the record (a 1 s released lease expires in 1 s)', () => {
    const short = rec({ leaseDurationSeconds: 1 });
    const o = observe(undefined, short, 0);
    expect(judgeAcquire(short, o, 'b', 999, false)).toMatchObject({ acquire: false });
    expect(judgeAcquire(short, o, 'b', 1_000, false)).toMatchObject({ acquire: true });
  });
});

describe('records written', () => {
  const t = DEFAULT_TIMINGS;
  it('creates with 0 transitions, renews keeping acquireTime, counts a takeover', () => {
    const created = nextRecord(undefined, 'a', 'T0', t);
    expect(created).toEqual({ holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: 'T0', renewTime: 'T0', leaseTransitions: 0 });
    const renewed = nextRecord(created, 'a', 'T1', t);
    expect(renewed).toMatchObject({ acquireTime: 'T0', renewTime: 'T1', leaseTransitions: 0 });
    const taken = nextRecord(renewed, 'b', 'T2', t);
    expect(taken).toMatchObject({ holderIdentity: 'b', acquireTime: 'T2', renewTime: 'T2', leaseTransitions: 1 });
  });

  it('release clears the holder and shortens the lease to 1 s, keeping the transition count', () => {
    expect(releasedRecord(rec(), 'T9')).toEqual({ holderIdentity: '', leaseDurationSeconds: 1, acquireTime: 'T9', renewTime: 'T9', leaseTransitions: 2 });
  });

  it('bounds a renew request by what is left of the deadline', () => {
    expect(renewRequestBudgetMs(1_000, 4_000, t)).toBe(7_000);
    expect(renewRequestBudgetMs(1_000, 12_000, t)).toBe(0);
  });

  it('jitters acquire retries in [retry, 2.2 × retry]', () => {
    expect(acquireRetryDelayMs(t, () => 0)).toBe(2_000);
    expect(acquireRetryDelayMs(t, () => 1)).toBe(4_400);
  });
});
