// List, then watch from the list's resourceVersion; re-watch from the last seen resourceVersion when
// a watch ends; re-list when the server says 410 Gone (our resourceVersion is too old) — the
// client-go reflector loop, with backoff, a stall watchdog and an AbortSignal. The one reflector:
// the agent's pod and StatefulSet watches and the process kubelet's pod watch.
import { abortAfter, linkedAbort } from '../abort.js';
import { ShoalError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from '../time.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type KubeClient } from './client.js';
import { KubeApiError } from './errors.js';
import { watchEvents } from './watch.js';

/** The part of any Kubernetes object the loop needs. */
export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string };
}

export type ListWatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** A (re-)list finished: `items` is complete and current again. */
  | { type: 'SYNCED' };

export interface ListWatchOptions<T extends KubeObject> {
  /** For logs and errors, e.g. "pods labelled shoal.dev/cluster=demo". */
  what: string;
  client: KubeClient;
  /** The collection's URL path, e.g. /api/v1/namespaces/default/pods. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** What identifies an object in `items` (default its name; a cluster-wide watch wants the uid). */
  key?: (obj: T) => string | undefined;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** Server-side end of each watch request (seconds); a fresh one follows at once. Default 300. */
  watchTimeoutSeconds?: number;
}

type WatchOutcome = { kind: 'ended' | 'gone' | 'aborted'; events: number } | { kind: 'error'; err: unknown; events: number };

export class ListWatch<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private readonly listeners = new Set<(ev: ListWatchEvent<T>) => void>();
  private resourceVersion = '';
  private isSynced = false;
  private syncWaiters: Array<() => void> = [];

  constructor(private readonly opts: ListWatchOptions<T>) {}

  /** The current objects by key (name unless `key` says otherwise; complete once synced). */
  get items(): ReadonlyMap<string, T> {
    return this.objects;
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  on(listener: (ev: ListWatchEvent<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves after the first complete list; rejects on abort or after `timeoutMs`. */
  async waitForSync(signal: AbortSignal, timeoutMs = 30_000): Promise<void> {
    if (this.isSynced) return;
    // A timer we hold (abortAfter): Node 20 may collect an inline AbortSignal.timeout under AbortSignal.any.
    const bound = abortAfter(timeoutMs, () => new Error('timeout'), signal);
    const bounded = bound.signal;
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => {
          bounded.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
          reject(signal.aborted ? signal.reason : new ShoalError(`no complete list of ${this.opts.what} within ${timeoutMs} ms`, 'check that the API server is reachable and the agent may list this resource'));
        };
        if (bounded.aborted) return onAbort();
        bounded.addEventListener('abort', onAbort, { once: true });
        this.syncWaiters.push(done);
      });
    } finally {
      bound.unlink();
    }
  }

  /** Lists and watches until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.opts.logger;
    const backoff = new Backoff(this.opts.backoff ?? DEFAULT_BACKOFF);
    while (!signal.aborted) {
      if (!this.resourceVersion) {
        try {
          await this.relist(signal);
          backoff.reset();
        } catch (err) {
          if (signal.aborted) break;
          log.warn({ err: errorMessage(err), what: this.opts.what }, 'list failed; retrying');
          await sleep(backoff.next(), signal).catch(() => undefined);
          continue;
        }
      }
      const started = Date.now();
      const outcome = await this.watchOnce(signal);
      if (outcome.kind === 'aborted') break;
      if (outcome.kind === 'gone') {
        log.info({ what: this.opts.what }, 'watch resourceVersion expired (410 Gone); re-listing');
        this.resourceVersion = '';
        continue;
      }
      if (outcome.kind === 'error') {
        log.warn({ err: errorMessage(outcome.err), what: this.opts.what }, 'watch failed; re-watching after backoff');
      } else if (outcome.events > 0 || Date.now() - started > 10_000) {
        backoff.reset();
        continue; // a normal server-side end: re-watch at once from the last resourceVersion
      }
      // An error, or a watch that ended at once with nothing: don't spin.
      await sleep(backoff.next(), signal).catch(() => undefined);
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const list = await this.opts.client.request<{ items?: T[] | null; metadata?: { resourceVersion?: string } }>(
      `list ${this.opts.what}`,
      { method: 'GET', path: this.opts.path, query: this.selectors() },
      { signal, timeoutMs: DEFAULT_REQUEST_TIMEOUT_MS },
    );
    const items = list.items ?? [];
    const resourceVersion = list.metadata?.resourceVersion ?? '';
    const fresh = new Map<string, T>();
    for (const item of items) {
      const name = this.keyOf(item);
      if (name) fresh.set(name, item);
    }
    // Emit the difference so subscribers see deletions that happened while we weren't watching.
    for (const [name, old] of this.objects) {
      if (!fresh.has(name)) {
        this.objects.delete(name);
        this.emit({ type: 'DELETED', object: old });
      }
    }
    for (const [name, obj] of fresh) {
      const old = this.objects.get(name);
      this.objects.set(name, obj);
      if (!old) this.emit({ type: 'ADDED', object: obj });
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit({ type: 'MODIFIED', object: obj });
    }
    this.resourceVersion = resourceVersion;
    this.isSynced = true;
    this.emit({ type: 'SYNCED' });
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }

  private keyOf(obj: T): string | undefined {
    return this.opts.key ? this.opts.key(obj) : obj.metadata?.name;
  }

  private selectors(): Record<string, string | undefined> {
    return { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  private async watchOnce(signal: AbortSignal): Promise<WatchOutcome> {
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 300;
    // Watchdog: a watch that neither delivers nor ends well past its server-side timeout is dead
    // (a half-open TCP connection); give up on it and start over.
    const stallMs = timeoutSeconds * 1000 + 30_000;
    const link = linkedAbort(signal);
    let stalled = false;
    const stall = setTimeout(() => {
      stalled = true;
      link.controller.abort(new Error(`no watch activity for ${stallMs} ms`));
    }, stallMs);
    let events = 0;
    try {
      const body = await this.opts.client.stream(
        `watch ${this.opts.what}`,
        {
          method: 'GET',
          path: this.opts.path,
          query: { ...this.selectors(), watch: true, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        },
        link.signal,
      );
      for await (const ev of watchEvents(body)) {
        events++;
        const end = this.apply(ev.type, ev.object);
        if (end) return { ...end, events };
      }
      return { kind: 'ended', events };
    } catch (err) {
      if (signal.aborted) return { kind: 'aborted', events };
      if (stalled) return { kind: 'error', err: link.signal.reason, events };
      if (err instanceof KubeApiError && err.code === 410) return { kind: 'gone', events };
      return { kind: 'error', err, events };
    } finally {
      clearTimeout(stall);
      link.controller.abort(); // ends the request if it is still open
      link.unlink();
    }
  }

  /** Applies one watch event; returns how the watch ends when the event ends it (an ERROR). */
  private apply(type: string, obj: unknown): { kind: 'gone' } | { kind: 'error'; err: unknown } | undefined {
    if (type === 'ERROR') {
      const status = obj as { code?: number; message?: string } | null;
      if (status?.code === 410) return { kind: 'gone' };
      return { kind: 'error', err: new Error(`watch error event: ${status?.message ?? JSON.stringify(obj)}`) };
    }
    const object = obj as T;
    const rv = object?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (type === 'BOOKMARK') return undefined;
    const name = object ? this.keyOf(object) : undefined;
    if (!name) return undefined;
    if (type === 'DELETED') {
      this.objects.delete(name);
      this.emit({ type: 'DELETED', object });
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      this.objects.set(name, object);
      this.emit({ type, object });
    }
    return undefined;
  }

  private emit(ev: ListWatchEvent<T>): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.opts.logger.error({ err: errorMessage(err), what: this.opts.what }, 'a watch subscriber threw; continuing');
      }
    }
  }
}
