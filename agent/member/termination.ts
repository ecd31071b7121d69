// The effects behind prestop-gate.ts: gathering the evidence that this pod is terminating. The
// kubelet runs the preStop hook right after it sees the deletionTimestamp, so the agent's own pod
// watch may not show it yet: wait a short, bounded time for the watch, then read the pod directly
// (a list by name: the agent's Role has pods list/watch/delete, not get).
import { errorMessage } from '../../common/errors.js';
import type { Resources } from '../../common/kube/resources.js';
import { sleep } from '../../common/time.js';
import { prestopVerdict, type PodReading, type PrestopVerdict } from './prestop-gate.js';

export interface TerminationSource {
  /** This pod's UID (POD_UID), when known. */
  selfUid: string | null;
  /** This pod in the agent's pod watch (null = the watch does not show it). */
  watched: () => { uid: string; deleting: boolean } | null;
  /** A direct read of this pod; never rejects except on `signal`'s abort. */
  read: (signal: AbortSignal) => Promise<PodReading>;
  /** How long to wait for the watch to show the deletionTimestamp before reading. */
  watchGraceMs: number;
  /** Poll period of that wait. Default 50 ms. */
  pollMs?: number;
}

/** Decides /prestop: the watch first (up to `watchGraceMs`), then a direct read. Rejects only on `signal`. */
export async function terminationVerdict(src: TerminationSource, sigterm: () => boolean, signal: AbortSignal): Promise<PrestopVerdict> {
  const evidence = (): Parameters<typeof prestopVerdict>[0] => ({ sigterm: sigterm(), watched: src.watched(), selfUid: src.selfUid });
  const deadline = Date.now() + src.watchGraceMs;
  let verdict = prestopVerdict(evidence());
  while (verdict.kind === 'confirm' && Date.now() < deadline) {
    await sleep(Math.max(1, Math.min(src.pollMs ?? 50, deadline - Date.now())), signal);
    verdict = prestopVerdict(evidence());
  }
  if (verdict.kind !== 'confirm') return verdict;
  const read = await src.read(signal);
  return prestopVerdict({ ...evidence(), read });
}

/** Reads `pod` through a list by name, bounded by `timeoutMs`; a failure is a reading too. */
export async function readPod(kube: Resources, pod: string, timeoutMs: number, signal: AbortSignal): Promise<PodReading> {
  try {
    const p = await kube.pods.findByName(pod, { signal, timeoutMs });
    if (p === null) return { found: false };
    const deletion = p.metadata?.deletionTimestamp;
    return { found: true, uid: p.metadata?.uid ?? '', deleting: deletion !== undefined && deletion !== null };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { error: errorMessage(err) };
  }
}
