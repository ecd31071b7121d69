/** Resolves after `ms`, or at once when `signal` aborts (never rejects: callers check `signal.aborted`). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Waits for `p`, at most `ms`; unlike a bare race with sleep(), the timer never outlives the wait. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([p, sleep(ms, done.signal)]);
  } finally {
    done.abort();
  }
}
