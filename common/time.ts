// Waiting and retry pacing for everything: the mesh's reconnects, the Kubernetes watch loops, the
// process kubelet and the tools. One sleep, one backoff.

export interface BackoffPolicy {
  /** First delay. */
  initialMs: number;
  /** Cap on any delay, so a long outage still retries at a steady pace. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 10_000 };

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter" — half
 * fixed, half random — so peers that lost the same server don't reconnect in lock-step, yet a retry
 * never comes sooner than half the exponential step.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2^n overflows to Infinity for huge n; Math.min handles it.
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n, 52));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(step / 2 + (step / 2) * r);
}

/** A retry counter: `next()` gives the delay and advances, `reset()` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    return backoffDelay(this.attempt++, this.policy, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. Never leaves a timer behind. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Waits for `p`, at most `ms`; unlike a bare race with sleep(), the timer never outlives the wait.
 * Never rejects on the timeout path (a rejection of `p` still propagates).
 */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([p, sleep(ms, done.signal).catch(() => undefined)]);
  } finally {
    done.abort();
  }
}
