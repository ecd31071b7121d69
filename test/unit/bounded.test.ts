import { describe, expect, it } from 'vitest';
import { settledWithin } from '../../agent/util/bounded.js';

describe('settledWithin', () => {
  it('tells a promise that settles in time (resolved or rejected) from one that does not', async () => {
    expect(await settledWithin(Promise.resolve(1), 1_000)).toBe(true);
    expect(await settledWithin(Promise.reject(new Error('x')), 1_000)).toBe(true);
    const started = Date.now();
    expect(await settledWithin(new Promise(() => undefined), 50)).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
