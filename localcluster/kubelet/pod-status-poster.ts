import type { KubeClient } from '../../common/kube/client.js';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { apiStatus, isUnreachable } from '../../common/kube/errors.js';
import { patchPodStatus } from './api.js';
import type { PodRef } from './events.js';
import type { PodStatusJson } from './status.js';

// Posting one pod's status: batched (many changes in 20 ms make one PATCH), never two at once, only
// when it changed, retried while the API server is unreachable or overloaded.

/** The conditions the kubelet owns; everyone else's come from the API. */
const OWN_CONDITIONS = ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];

export interface StatusPosterDeps {
  client: KubeClient;
  pod: PodRef;
  /** Ends a post in flight and any retry (the worker is finished). */
  signal: AbortSignal;
  log: Logger;
  /** The status as it is now (status.ts decides), given our conditions as last posted. */
  compute: () => PodStatusJson;
  /** False while there is nothing to post (no IP yet) or no one to post to (the pod is gone). */
  canPost: () => boolean;
  /** The pod is gone from the API: nothing is scheduled any more. */
  gone: () => boolean;
}

export class PodStatusPoster {
  private timer: NodeJS.Timeout | undefined;
  private posting = false;
  private lastPosted: string | null = null;
  /** Our own conditions as we last posted them (the watch may lag behind them). */
  ownConditions: PodStatusJson['conditions'] = [];

  constructor(private readonly deps: StatusPosterDeps) {}

  /** Posts within 20 ms (changes meanwhile join the same post). */
  soon(): void {
    if (this.deps.gone() || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 20);
  }

  /** Posts even when unchanged (after an API outage). */
  repost(): void {
    this.lastPosted = null;
    this.soon();
  }

  cancel(): void {
    clearTimeout(this.timer);
  }

  async flush(): Promise<void> {
    if (!this.deps.canPost()) return;
    if (this.posting) {
      this.soon();
      return;
    }
    const status = this.deps.compute();
    const body = JSON.stringify(status);
    if (body === this.lastPosted) return;
    this.posting = true;
    const { client, pod, log, signal } = this.deps;
    try {
      await patchPodStatus(client, pod.namespace, pod.name, pod.uid, status, signal);
      this.lastPosted = body;
      this.ownConditions = status.conditions.filter((c) => OWN_CONDITIONS.includes(c.type));
    } catch (err) {
      if (signal.aborted) return; // the worker is finished: nothing to retry
      const code = apiStatus(err);
      const transient = isUnreachable(err) || code === 429 || (code !== undefined && code >= 500);
      if (!transient) {
        // 404: deleted (the watch will say so); 409/422: a recreated pod of the same name or a bug.
        if (code !== 404) log.warn({ err: errorMessage(err), code }, 'status update rejected');
        return;
      }
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, 1_000);
    } finally {
      this.posting = false;
    }
  }
}
