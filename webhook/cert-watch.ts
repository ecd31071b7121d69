// Reload the serving certificate when the files in --cert-dir change (a renewed Secret, a hand-made
// replacement), without a restart: the caller swaps the https server's secure context.
import { watch, type FSWatcher } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { readCertDir, sameBundle, type TlsBundle } from './tls.js';

export interface CertWatcher {
  /** Reads the directory now; resolves once any change has been applied. */
  check(): Promise<void>;
  close(): void;
}

/**
 * Watches `dir` (the directory, not the files: writers replace files by rename and Kubernetes swaps a
 * Secret volume's symlink) and polls every `pollMs` as a safety net for missed events.
 */
export function watchCertDir(dir: string, current: TlsBundle, onChange: (b: TlsBundle) => void, log: Logger, pollMs = 10_000): CertWatcher {
  let last: TlsBundle = current;
  let lastRejected = '';
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const apply = async () => {
    let next: TlsBundle | null;
    try {
      next = await readCertDir(dir);
    } catch (err) {
      log.warn({ dir, err: errorMessage(err) }, 'cannot read the certificate directory; keeping the current certificate');
      return;
    }
    if (!next || sameBundle(next, last)) return;
    try {
      createSecureContext({ cert: next.cert, key: next.key }); // throws on a key that does not match
    } catch (err) {
      // Often a writer caught between the key and the certificate: the next event brings the pair.
      if (lastRejected !== next.cert + next.key) log.warn({ dir, err: errorMessage(err) }, 'new certificate files do not form a usable pair yet; keeping the current certificate');
      lastRejected = next.cert + next.key;
      return;
    }
    last = next;
    onChange(next);
    log.info({ dir }, 'reloaded the serving certificate');
  };
  const check = () => (running = running.then(apply));

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => void check(), 100);
    });
    watcher.on('error', (err) => log.warn({ dir, err: errorMessage(err) }, 'certificate directory watch failed; polling only'));
  } catch (err) {
    log.warn({ dir, err: errorMessage(err) }, 'cannot watch the certificate directory; polling only');
  }
  const poll = setInterval(() => void check(), pollMs);
  poll.unref();
  return {
    check,
    close() {
      clearTimeout(debounce);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
