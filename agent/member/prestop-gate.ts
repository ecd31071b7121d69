// Should GET /prestop hand this pod's master role over? Only while the pod is terminating: its
// deletionTimestamp is set, or its agent received SIGTERM (SPEC §4). Anyone who can reach the
// agent's port can call /prestop, so on a running pod it must move nothing. Pure: the evidence
// comes in (SIGTERM, the pod watch's view, a direct read of the pod), a verdict with its one-line
// reason goes out; "confirm" asks the caller to read the pod from the API server and decide again.

/** This pod as the API server shows it (a direct read), or why it could not be read. */
export type PodReading = { found: false } | { found: true; uid: string; deleting: boolean } | { error: string };

export interface TerminationEvidence {
  /** The agent received SIGTERM (it is stopping). */
  sigterm: boolean;
  /** This pod in the agent's pod watch; null when the watch does not show it (not listed yet, or gone). */
  watched: { uid: string; deleting: boolean } | null;
  /** The direct read, once made. */
  read?: PodReading;
  /** This pod's UID (POD_UID) when known: a pod with the same name and another UID is a successor. */
  selfUid: string | null;
}

export type PrestopVerdict =
  | { kind: 'act'; reason: string }
  | { kind: 'confirm'; reason: string }
  | { kind: 'refuse'; status: 409 | 503; reason: string };

export const NOT_TERMINATING =
  'this pod is not terminating (no deletionTimestamp, no SIGTERM): /prestop hands over only for a pod that is stopping; to move a master use POST /switchover';

export function prestopVerdict(e: TerminationEvidence): PrestopVerdict {
  if (e.sigterm) return { kind: 'act', reason: 'the agent received SIGTERM: the pod is stopping' };
  const ours = (uid: string): boolean => e.selfUid === null || uid === '' || uid === e.selfUid;
  if (e.watched?.deleting === true && ours(e.watched.uid)) return { kind: 'act', reason: 'the pod watch shows this pod\'s deletionTimestamp' };
  const read = e.read;
  if (read === undefined) return { kind: 'confirm', reason: 'the pod watch does not show this pod terminating: read it from the API server' };
  if ('error' in read) return { kind: 'refuse', status: 503, reason: `cannot tell whether this pod is terminating (reading it failed: ${read.error}); nothing was moved` };
  if (!read.found) return { kind: 'act', reason: 'this pod is no longer in the API server: it is going away' };
  if (!ours(read.uid)) return { kind: 'act', reason: 'a pod of this name with another UID exists: this one was deleted' };
  if (read.deleting) return { kind: 'act', reason: 'the API server shows this pod\'s deletionTimestamp' };
  return { kind: 'refuse', status: 409, reason: NOT_TERMINATING };
}
