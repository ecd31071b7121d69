// A wait that always ends: shutdown must finish even when one of its steps hangs (the kubelet would
// otherwise SIGKILL the agent at the end of the grace period, with no word on what hung).

/** Waits for `p` at most `ms`; true if it settled in time. The timer never outlives the wait. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
