import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inMajority, mayCoordinate, shouldSelfFence, trackSince } from '../../agent/decide/fencing.js';
import type { Timings } from '../../agent/decide/model.js';
import { DEFAULT_TIMINGS, fenceDeadline, safetyMarginMs, validateTimings } from '../../agent/decide/timings.js';
import { NOW, T } from './decide-fixtures.js';

describe('self-fencing', () => {
  const input = { isMaster: true, reachablePeers: 0, clusterSize: 3, peersKnown: true, lostMajoritySinceMs: NOW - 10_000, now: NOW, timings: T };

  it.each([
    ['a replica never fences', { isMaster: false }, false],
    ['a master that sees a majority does not', { reachablePeers: 1 }, false],
    ['a master alone in a one-agent cluster does not', { clusterSize: 1 }, false],
    ['a cut-off master fences once past the deadline', {}, true],
    ['a cut-off master waits before the deadline', { lostMajoritySinceMs: NOW - fenceDeadline(T) + 1 }, false],
    ['a cut-off master fences exactly at the deadline', { lostMajoritySinceMs: NOW - fenceDeadline(T) }, true],
    ['no start time counts as just lost', { lostMajoritySinceMs: null }, false],
    ['half of an even cluster is not a majority', { reachablePeers: 1, clusterSize: 4 }, true],
    ['a master that does not know its peers yet has no majority, even alone', { clusterSize: 1, peersKnown: false }, true],
  ])('%s', (_what, over, fence) => {
    const d = shouldSelfFence({ ...input, ...over });
    expect(d.fence).toBe(fence);
    expect(d.reason.length).toBeGreaterThan(10);
  });

  it.each([
    ['a master with a mutual majority renews', { reachablePeers: 1 }, true],
    ['a replica with a mutual majority renews (it may be promoted any moment)', { isMaster: false, reachablePeers: 2 }, true],
    ['a one-agent cluster renews', { clusterSize: 1 }, true],
    ['a cut-off master does not, even before its deadline', { lostMajoritySinceMs: NOW }, false],
    ['a cut-off replica does not', { isMaster: false }, false],
    ['an agent that does not know its peers does not', { reachablePeers: 2, peersKnown: false }, false],
  ])('watchdog lease: %s', (_what, over, renew) => {
    const d = shouldSelfFence({ ...input, ...over });
    expect(d.renewLease).toBe(renew);
    if (renew) expect(d.fence).toBe(false);
  });

  it('says what it decided', () => {
    expect(shouldSelfFence(input).reason).toMatch(/master hears and is heard by 1 of 3 agents for 10.0 s, past the 2\.\d s self-fence deadline/);
  });

  it.each([
    [0, 1, true],
    [0, 2, false],
    [1, 2, true],
    [1, 3, true],
    [0, 3, false],
    [2, 5, true],
    [1, 5, false],
  ])('%i peers of a %i-agent mesh: majority %s', (peers, size, yes) => expect(inMajority(peers, size)).toBe(yes));

  it('trackSince keeps the start of an unbroken run', () => {
    expect(trackSince(null, true, 5)).toBe(5);
    expect(trackSince(5, true, 9)).toBe(5);
    expect(trackSince(5, false, 9)).toBeNull();
  });
});

describe('who may coordinate', () => {
  const input = { holding: true, peersKnown: true, reachablePeers: 0, clusterSize: 3, lostMajoritySinceMs: NOW - 10_000, now: NOW, timings: T };
  it.each([
    ['a coordinator on the majority side keeps the Lease', { reachablePeers: 1 }, true],
    ['a candidate on the majority side may take it', { holding: false, reachablePeers: 2 }, true],
    ['a candidate without a majority may not', { holding: false, lostMajoritySinceMs: NOW }, false],
    ['a candidate that does not know its peers may not', { holding: false, peersKnown: false, clusterSize: 1 }, false],
    ['a coordinator that just lost the majority keeps it for now (a blip)', { lostMajoritySinceMs: NOW - 100 }, true],
    ['a coordinator cut off past the self-fence deadline releases it', {}, false],
    ['exactly at the deadline it releases', { lostMajoritySinceMs: NOW - fenceDeadline(T) }, false],
  ])('%s', (_what, over, ok) => {
    const d = mayCoordinate({ ...input, ...over });
    expect(d.ok).toBe(ok);
    expect(d.reason.length).toBeGreaterThan(10);
  });
  it('says why it releases', () => {
    expect(mayCoordinate(input).reason).toMatch(/coordinator hears and is heard by 1 of 3 agents for 10.0 s, past 2.9 s: releasing the Lease/);
  });
});

describe('timings', () => {
  it('derives the self-fence deadline from the failover timeout with the margin in between', () => {
    expect(fenceDeadline(DEFAULT_TIMINGS)).toBe(DEFAULT_TIMINGS.failoverTimeoutMs - safetyMarginMs(DEFAULT_TIMINGS));
    expect(fenceDeadline(DEFAULT_TIMINGS)).toBe(2900);
  });

  it('holds for any accepted configuration: a cut-off master is read-only before a failover can fire', () => {
    const timings = fc.record({
      failoverTimeoutMs: fc.integer({ min: 1, max: 120_000 }),
      heartbeatTimeoutMs: fc.integer({ min: 1, max: 10_000 }),
      fenceApplyMs: fc.integer({ min: 1, max: 2_000 }),
      agentTickMs: fc.integer({ min: 1, max: 1_000 }),
      heartbeatIntervalMs: fc.integer({ min: 1, max: 2_000 }),
      catchUpTimeoutMs: fc.constant(1),
      maxHealthyLagMs: fc.constant(1),
      rebootstrapRetryMs: fc.constant(1),
      podRestartTimeoutMs: fc.constant(1),
    }).map((t): Timings => ({ ...DEFAULT_TIMINGS, ...t }));
    fc.assert(
      fc.property(timings, (t: Timings) => {
        let deadline: number;
        try {
          deadline = fenceDeadline(t);
        } catch {
          return true; // refused configurations are fine; accepted ones must be safe
        }
        // Worst case: its peers notice at once; the master (one-way partition) only when the first
        // heartbeat after a peer stopped hearing it arrives; its tick and box.cfg are slow.
        const masterReadOnlyBy = t.heartbeatTimeoutMs + t.heartbeatIntervalMs + deadline + t.agentTickMs + t.fenceApplyMs;
        return deadline >= t.agentTickMs && masterReadOnlyBy < t.failoverTimeoutMs;
      }),
    );
  });

  it.each([
    ['a failover timeout shorter than detection', { failoverTimeoutMs: 1000 }, /raise SHOAL_FAILOVER_TIMEOUT_MS to at least/],
    ['a zero value', { agentTickMs: 0 }, /agentTickMs must be a positive number/],
    ['NaN', { catchUpTimeoutMs: Number.NaN }, /catchUpTimeoutMs must be a positive number/],
  ])('refuses %s with the fix', (_what, over, message) => {
    expect(() => validateTimings({ ...DEFAULT_TIMINGS, ...over })).toThrow(message);
  });

  it('the suggested failover timeout is accepted', () => {
    const t = { ...DEFAULT_TIMINGS, failoverTimeoutMs: 1000 };
    const suggested = Number(/at least (\d+)/.exec(String((() => { try { validateTimings(t); } catch (e) { return e; } })()))?.[1]);
    expect(() => validateTimings({ ...t, failoverTimeoutMs: suggested })).not.toThrow();
  });
});
