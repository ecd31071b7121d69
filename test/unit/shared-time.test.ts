import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, sleep } from '../../common/time.js';

const policy = { initialMs: 100, maxMs: 5_000 };

describe('backoff', () => {
  it('doubles from the initial delay, with jitter in [step/2, step]', () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
  });

  it('is capped and never negative, for any attempt and any random value (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -5, max: 10_000 }), fc.double({ min: -1, max: 2, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, policy, () => r);
        expect(d).toBeGreaterThanOrEqual(policy.initialMs / 2);
        expect(d).toBeLessThanOrEqual(policy.maxMs);
      }),
    );
  });

  it('grows monotonically in its floor and resets', () => {
    const b = new Backoff(policy, () => 0);
    const seq = Array.from({ length: 10 }, () => b.next());
    expect(seq).toEqual([50, 100, 200, 400, 800, 1600, 2500, 2500, 2500, 2500]);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it('sleep is cancellable and leaves no timer behind', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    await expect(sleep(1)).resolves.toBeUndefined();
    await expect(sleep(10, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});
