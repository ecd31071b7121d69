import type { KubeClient } from '../../common/kube/client.js';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { apiStatus } from '../../common/kube/errors.js';
import { deletePodNow } from './api.js';
import type { PodRef } from './events.js';
import type { ContainerProcess } from './process.js';
import { sleep, waitAtMost } from '../../common/time.js';

// Stopping as the kubelet does: SIGTERM, SIGKILL when the grace period (or the pod's termination
// deadline, which a second DELETE may shorten) has passed; then the final DELETE of the pod.

/** The kubelet's minimum wait between SIGTERM and SIGKILL after a preStop hook used up the grace period. */
export const MIN_TERM_GRACE_MS = 2_000;

/** SIGTERM, then SIGKILL once `graceMs` passed or `deadlineMs()` (read on every check) came; resolves once the process is gone. */
export async function terminateProcess(proc: ContainerProcess, graceMs: number, deadlineMs: () => number, log: Logger, container: string): Promise<void> {
  proc.signal('SIGTERM');
  const killAt = Date.now() + graceMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (!exited && Date.now() < Math.min(killAt, deadlineMs())) {
    await waitAtMost(proc.exited, 100);
  }
  if (!exited) {
    log.warn({ container, pid: proc.pid }, 'container did not stop in its grace period: SIGKILL');
    proc.signal('SIGKILL');
    await proc.exited;
  }
}

/** The final DELETE (uid precondition), retried each second until it lands, the pod is gone, or `stop()` says so. */
export async function deletePodFinally(client: KubeClient, pod: PodRef, stop: () => boolean, signal: AbortSignal, log: Logger): Promise<void> {
  while (!stop()) {
    try {
      await deletePodNow(client, pod.namespace, pod.name, pod.uid, signal);
      log.info('pod deleted');
      break;
    } catch (err) {
      if (signal.aborted) return;
      const code = apiStatus(err);
      if (code === 404 || code === 409) break; // gone, or a new pod of the same name: not ours to delete
      log.warn({ err: errorMessage(err) }, 'final pod delete failed; retrying');
      await sleep(1_000, signal).catch(() => undefined);
    }
  }
}
