// A ListWatch whose objects are mapped to the small records the coordinator works with (pods →
// peers, StatefulSets → replica set specs), with a change feed in terms of those records.
import type { KubeClient } from '../../common/kube/client.js';
import { ListWatch, type KubeObject, type ListWatchEvent } from '../../common/kube/reflector.js';
import type { Logger } from '../../common/log.js';
import type { BackoffPolicy } from '../../common/time.js';

export type MappedChange<V> = { type: 'upsert'; name: string; value: V } | { type: 'delete'; name: string } | { type: 'synced' };

export interface WatcherOptions {
  logger: Logger;
  backoff?: BackoffPolicy;
  watchTimeoutSeconds?: number;
}

export interface CollectionSource {
  what: string;
  path: string;
  labelSelector: string;
}

export class MappedWatch<T extends KubeObject, V> {
  private readonly lw: ListWatch<T>;
  private readonly map = new Map<string, V>();

  constructor(
    client: KubeClient,
    source: CollectionSource,
    private readonly mapper: (obj: T) => V,
    opts: WatcherOptions,
  ) {
    this.lw = new ListWatch<T>({
      what: source.what,
      client,
      path: source.path,
      labelSelector: source.labelSelector,
      logger: opts.logger,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.watchTimeoutSeconds ? { watchTimeoutSeconds: opts.watchTimeoutSeconds } : {}),
    });
    // Registered first, so the map is current when any onChange listener runs.
    this.lw.on((ev) => this.apply(ev));
  }

  /** The live map by object name (complete once synced). */
  get current(): ReadonlyMap<string, V> {
    return this.map;
  }

  get synced(): boolean {
    return this.lw.synced;
  }

  onChange(listener: (change: MappedChange<V>) => void): () => void {
    return this.lw.on((ev) => {
      if (ev.type === 'SYNCED') return listener({ type: 'synced' });
      const name = ev.object.metadata?.name ?? '';
      const value = this.map.get(name);
      if (ev.type === 'DELETED' || value === undefined) listener({ type: 'delete', name });
      else listener({ type: 'upsert', name, value });
    });
  }

  /** Lists and watches until `signal` aborts. Never rejects. */
  run(signal: AbortSignal): Promise<void> {
    return this.lw.run(signal);
  }

  waitForSync(signal: AbortSignal, timeoutMs?: number): Promise<void> {
    return this.lw.waitForSync(signal, timeoutMs);
  }

  private apply(ev: ListWatchEvent<T>): void {
    if (ev.type === 'SYNCED') return;
    const name = ev.object.metadata?.name;
    if (!name) return;
    if (ev.type === 'DELETED') this.map.delete(name);
    else this.map.set(name, this.mapper(ev.object));
  }
}
