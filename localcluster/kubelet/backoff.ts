// Restart back-off for crashing containers, shaped like the kubelet's (first restart at once, then
// doubling) but with a small cap so tests do not wait minutes.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 10_000 };

/** Delay before the next start after `consecutiveRestarts` restarts in a row (0 → at once). */
export function restartDelayMs(consecutiveRestarts: number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  if (consecutiveRestarts <= 0) return 0;
  const delay = opts.initialMs * 2 ** Math.min(consecutiveRestarts - 1, 30);
  return Math.min(delay, opts.maxMs);
}

/** A run longer than this resets the back-off (the kubelet resets after twice its cap). */
export function backoffResetAfterMs(opts: BackoffOptions = DEFAULT_BACKOFF): number {
  return 2 * opts.maxMs;
}

/** Delay for the n-th retry of a pod-level step that failed (volumes, API reads): 0.5 s doubling to 5 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(500 * 2 ** Math.min(attempt, 10), 5_000);
}

/** Pacing of the kubelet's and the provisioner's watches: retries 0.5 s doubling to 5 s, each watch renewed after 2 min. */
export const KUBELET_WATCH = { backoff: { initialMs: 500, maxMs: 5_000 }, watchTimeoutSeconds: 120 } as const;
