// A child AbortController that follows a parent signal and can be unlinked. AbortSignal.any()
// keeps every derived signal alive as long as its long-lived parent (Node 20 leaks them), which an
// agent calling the console every second for weeks cannot afford.
export interface LinkedAbort {
  controller: AbortController;
  signal: AbortSignal;
  /** Stops following the parents; call it when the operation ends. */
  unlink(): void;
}

export function linkedAbort(...parents: Array<AbortSignal | undefined>): LinkedAbort {
  const controller = new AbortController();
  const links: Array<() => void> = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    const follow = (): void => controller.abort(parent.reason);
    parent.addEventListener('abort', follow, { once: true });
    links.push(() => parent.removeEventListener('abort', follow));
  }
  return {
    controller,
    signal: controller.signal,
    unlink: () => {
      for (const l of links.splice(0)) l();
    },
  };
}

/** linkedAbort that also aborts with `reason()` after `ms`. */
export function abortAfter(ms: number, reason: () => unknown, ...parents: Array<AbortSignal | undefined>): LinkedAbort {
  const link = linkedAbort(...parents);
  const timer = setTimeout(() => link.controller.abort(reason()), ms);
  return {
    ...link,
    unlink: () => {
      clearTimeout(timer);
      link.unlink();
    },
  };
}
