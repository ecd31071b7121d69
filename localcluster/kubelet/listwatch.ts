import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { retryDelayMs } from './backoff.js';
import { sleep } from '../../shared/time.js';

// List, then watch from the list's resourceVersion; re-watch from the last seen version when a watch
// ends normally, re-list (after a growing pause) when it fails or the version expired (410). The
// consumer sees a full `sync` after every list and single events in between.

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchOptions<T> {
  kc: KubeConfig;
  /** Watch path, e.g. `/api/v1/pods`. */
  path: string;
  query?: Record<string, string>;
  list: () => Promise<{ items: T[]; resourceVersion: string }>;
  onSync: (items: T[]) => void;
  onEvent: (type: WatchEventType, obj: T) => void;
  logger: Logger;
  signal: AbortSignal;
  /** Server-side watch timeout: a silent connection still ends after it. Default 120 s. */
  watchTimeoutSeconds?: number;
}

type WatchEnd = 'ended' | 'expired' | 'failed';

export function startListWatch<T extends { metadata?: { resourceVersion?: string } }>(opts: ListWatchOptions<T>): Promise<void> {
  const { logger, signal } = opts;
  const watcher = new Watch(opts.kc);

  const watchOnce = (resourceVersion: string, onVersion: (rv: string) => void): Promise<WatchEnd> =>
    new Promise<WatchEnd>((resolve) => {
      let outcome: WatchEnd = 'ended';
      let controller: AbortController | undefined;
      const onAbort = (): void => controller?.abort();
      const finish = (end: WatchEnd): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(end);
      };
      watcher
        .watch(
          opts.path,
          {
            ...opts.query,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: opts.watchTimeoutSeconds ?? 120,
          },
          (type: string, obj: unknown) => {
            const rv = (obj as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
            if (type === 'ERROR') {
              const code = (obj as { code?: number } | undefined)?.code;
              outcome = code === 410 ? 'expired' : 'failed';
              controller?.abort();
              return;
            }
            if (rv) onVersion(rv);
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') opts.onEvent(type, obj as T);
          },
          (err: unknown) => {
            if (err && outcome === 'ended' && !signal.aborted) {
              logger.debug({ err: errorMessage(err), path: opts.path }, 'watch failed');
              outcome = 'failed';
            }
            finish(outcome);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (signal.aborted) c.abort();
            else signal.addEventListener('abort', onAbort, { once: true });
          },
          (err: unknown) => {
            logger.debug({ err: errorMessage(err), path: opts.path }, 'watch could not start');
            finish('failed');
          },
        );
    });

  const run = async (): Promise<void> => {
    let attempt = 0;
    while (!signal.aborted) {
      let rv: string;
      try {
        const listed = await opts.list();
        rv = listed.resourceVersion;
        opts.onSync(listed.items);
        attempt = 0;
      } catch (err) {
        if (signal.aborted) return;
        logger.warn({ err: errorMessage(err), path: opts.path, attempt }, 'list failed; retrying');
        await sleep(retryDelayMs(attempt++), signal).catch(() => undefined);
        continue;
      }
      for (;;) {
        const startedMs = Date.now();
        const end = await watchOnce(rv, (v) => (rv = v));
        if (signal.aborted) return;
        // A server-side timeout: carry on from the last version (unless it ends at once, again and again).
        if (end === 'ended' && Date.now() - startedMs > 1_000) continue;
        if (end !== 'expired') await sleep(retryDelayMs(attempt++), signal).catch(() => undefined);
        break; // re-list
      }
    }
  };
  return run();
}
