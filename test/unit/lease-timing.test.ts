import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ELECTION_TIMINGS,
  acquireRetryDelayMs,
  judgeAcquire,
  leadershipValid,
  nextRecord,
  observe,
  releasedRecord,
  renewRequestBudgetMs,
  validateElectionTimings,
  yieldAfterReleaseMs,
  type Candidate,
  type ElectorState,
  type LeaseRecord,
} from '../../agent/lease/timing.js';

const rec = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: 'a',
  leaseDurationSeconds: 15,
  acquireTime: '2024-01-01T00:00:00.000000Z',
  renewTime: '2024-01-01T00:00:10.000000Z',
  leaseTransitions: 2,
  holderUid: 'uid-a1',
  ...over,
});
const A: Candidate = { identity: 'a', uid: 'uid-a1' };
const B: Candidate = { identity: 'b', uid: 'uid-b1' };
const idle: ElectorState = { leading: false, ownAcquireTime: '', yieldUntilMs: 0 };
const leading: ElectorState = { leading: true, ownAcquireTime: '2024-01-01T00:00:00.000000Z', yieldUntilMs: 0 };

describe('election timing relations', () => {
  it('accepts the client-go defaults', () => {
    expect(validateElectionTimings(DEFAULT_ELECTION_TIMINGS)).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it.each([
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'must be greater than renewDeadline'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 }, 'must be greater than 1.2 × retryPeriod'],
    [{ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'whole seconds'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }, 'positive'],
    [{ leaseDurationMs: Number.NaN, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'positive'],
  ])('rejects %j with a clear error and a fix', (t, msg) => {
    expect(() => validateElectionTimings(t)).toThrow(msg);
    expect(() => validateElectionTimings(t)).toThrow('fix:');
  });

  it('any valid triple steps a leader down before anyone else may take over (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 60_000 }), (leaseS, renew, retry) => {
        const t = { leaseDurationMs: leaseS * 1000, renewDeadlineMs: renew, retryPeriodMs: retry };
        let ok = true;
        try {
          validateElectionTimings(t);
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
    expect(judgeAcquire(r, o, B, 1_000 + 14_999, idle)).toMatchObject({ action: 'wait' });
    expect(judgeAcquire(r, o, B, 1_000 + 15_000, idle)).toMatchObject({ action: 'acquire', takeover: true });
  });

  it('restarts the clock whenever the record changes', () => {
    const o1 = observe(undefined, rec(), 0);
    const same = observe(o1, rec(), 10_000);
    expect(same.atMs).toBe(0);
    const renewed = observe(same, rec({ renewTime: '2024-01-01T00:00:12.000000Z' }), 12_000);
    expect(renewed.atMs).toBe(12_000);
    expect(judgeAcquire(rec({ renewTime: '2024-01-01T00:00:12.000000Z' }), renewed, B, 20_000, idle)).toMatchObject({ action: 'wait' });
  });

  it('acquires a free (released) lease at once, and its own lease while leading', () => {
    const free = rec({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(judgeAcquire(free, observe(undefined, free, 0), B, 0, idle)).toMatchObject({ action: 'acquire', takeover: true });
    expect(judgeAcquire(rec(), observe(undefined, rec(), 0), A, 0, leading)).toMatchObject({ action: 'acquire', takeover: false });
  });

  it('frees at once a lease an earlier agent process of the same pod (same uid) held', () => {
    const o = observe(undefined, rec(), 1_000); // a restarted agent sees the record its predecessor renewed
    const v = judgeAcquire(rec(), o, A, 1_000, idle);
    expect(v).toMatchObject({ action: 'release' });
    expect(v.reason).toContain('earlier agent process of this pod');
  });

  it('waits out a lease naming its pod name under another uid (a recreated pod proves nothing), and without a uid', () => {
    const o = observe(undefined, rec(), 1_000);
    for (const self of [{ identity: 'a', uid: 'uid-a2' }, { identity: 'a', uid: '' }]) {
      expect(judgeAcquire(rec(), o, self, 1_000 + 14_999, idle)).toMatchObject({ action: 'wait' });
      expect(judgeAcquire(rec(), o, self, 1_000 + 15_000, idle)).toMatchObject({ action: 'acquire', takeover: true });
    }
    expect(judgeAcquire(rec({ holderUid: '' }), o, A, 1_000, idle)).toMatchObject({ action: 'wait' });
  });

  it('takes back at once its own acquisition after stepping down (nobody took it meanwhile)', () => {
    const o = observe(undefined, rec(), 0);
    const steppedDown = { ...leading, leading: false };
    expect(judgeAcquire(rec(), o, A, 0, steppedDown)).toMatchObject({ action: 'acquire', takeover: false });
    // Another acquisition of the same pod (other acquireTime) is an earlier process's.
    expect(judgeAcquire(rec({ acquireTime: 'T-other' }), o, A, 0, steppedDown)).toMatchObject({ action: 'release' });
  });

  it('after freeing its predecessor\'s lease, leaves it to peers for a bounded time, then takes it', () => {
    const free = releasedRecord(rec(), 'T9');
    const o = observe(undefined, free, 0);
    const y = yieldAfterReleaseMs(DEFAULT_ELECTION_TIMINGS);
    // Every peer retries within retryPeriod × (1 + jitter): the yield covers that with room to spare.
    expect(y).toBeGreaterThan(DEFAULT_ELECTION_TIMINGS.retryPeriodMs * 2.2);
    expect(y).toBeLessThan(DEFAULT_ELECTION_TIMINGS.leaseDurationMs);
    const yielding = { ...idle, yieldUntilMs: y };
    expect(judgeAcquire(free, o, A, y - 1, yielding)).toMatchObject({ action: 'wait' });
    expect(judgeAcquire(free, o, B, 0, idle)).toMatchObject({ action: 'acquire', takeover: true });
    expect(judgeAcquire(free, o, A, y, yielding)).toMatchObject({ action: 'acquire', takeover: true });
  });

  it('uses the lease duration written in the record (a 1 s released lease expires in 1 s)', () => {
    const short = rec({ leaseDurationSeconds: 1 });
    const o = observe(undefined, short, 0);
    expect(judgeAcquire(short, o, B, 999, idle)).toMatchObject({ action: 'wait' });
    expect(judgeAcquire(short, o, B, 1_000, idle)).toMatchObject({ action: 'acquire' });
  });
});

describe('records written', () => {
  const t = DEFAULT_ELECTION_TIMINGS;
  it('creates with 0 transitions, renews keeping acquireTime, counts a takeover', () => {
    const created = nextRecord(undefined, A, 'T0', t);
    expect(created).toEqual({ holderIdentity: 'a', holderUid: 'uid-a1', leaseDurationSeconds: 15, acquireTime: 'T0', renewTime: 'T0', leaseTransitions: 0 });
    const renewed = nextRecord(created, A, 'T1', t);
    expect(renewed).toMatchObject({ acquireTime: 'T0', renewTime: 'T1', leaseTransitions: 0 });
    const taken = nextRecord(renewed, B, 'T2', t);
    expect(taken).toMatchObject({ holderIdentity: 'b', holderUid: 'uid-b1', acquireTime: 'T2', renewTime: 'T2', leaseTransitions: 1 });
  });

  it('release clears the holder and shortens the lease to 1 s, keeping the transition count', () => {
    expect(releasedRecord(rec(), 'T9')).toEqual({ holderIdentity: '', holderUid: '', leaseDurationSeconds: 1, acquireTime: 'T9', renewTime: 'T9', leaseTransitions: 2 });
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
