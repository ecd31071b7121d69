// Pure derivations from an instance's state: its role, its lag behind the master, and whether it
// is ready (SPEC §4 /readyz: configured and, for a replica, following its master).
import type { InstanceState, PeerState, Role } from './state.js';

export function roleOf(s: Pick<InstanceState, 'configured' | 'ro' | 'notes'>): Role {
  if (!s.configured) return 'unconfigured';
  if (s.ro === false) return 'master';
  return s.notes.fenced ? 'fenced' : 'replica';
}

/** The peers this instance replicates from: the master when its UUID is known, else every upstream. */
function masterUpstreams(s: Pick<InstanceState, 'replication' | 'notes' | 'uuid'>): PeerState[] {
  const withUpstream = s.replication.filter((p) => p.upstream && p.uuid !== s.uuid);
  const master = s.notes.masterUuid;
  if (master && master !== s.uuid) return withUpstream.filter((p) => p.uuid === master);
  return withUpstream;
}

/** Seconds behind the master: 0 on a writable master, the master upstream's lag on a replica. */
export function lagOf(s: Pick<InstanceState, 'configured' | 'ro' | 'replication' | 'notes' | 'uuid'>): number | undefined {
  if (!s.configured) return undefined;
  if (s.ro === false) return 0;
  const lags = masterUpstreams(s)
    .filter((p) => p.upstream?.status === 'follow')
    .map((p) => p.upstream?.lag)
    .filter((l): l is number => l !== undefined);
  return lags.length > 0 ? Math.max(...lags) : undefined;
}

export interface Readiness {
  ready: boolean;
  reason: string;
}

export function readinessOf(s: Pick<InstanceState, 'configured' | 'phase' | 'ro' | 'status' | 'replication' | 'notes' | 'uuid'>): Readiness {
  if (!s.configured) return { ready: false, reason: `not configured (${s.phase})` };
  if (s.status !== 'running') return { ready: false, reason: `box.info.status is ${s.status ?? 'unknown'}` };
  if (s.ro === false) return { ready: true, reason: 'master' };
  // Fenced: a master made read-only, out of service until the coordinator decides what it becomes.
  if (s.notes.fenced) return { ready: false, reason: 'fenced (read-only, waiting for the coordinator)' };
  const ups = masterUpstreams(s);
  if (ups.length === 0) {
    return { ready: false, reason: s.notes.masterUuid ? `no upstream from the master ${s.notes.masterUuid}` : 'read-only with no upstream' };
  }
  const following = ups.filter((p) => p.upstream?.status === 'follow');
  if (following.length === 0) {
    const p = ups[0];
    return { ready: false, reason: `upstream ${p?.uuid ?? '?'} is ${p?.upstream?.status ?? 'absent'}${p?.upstream?.message ? `: ${p.upstream.message}` : ''}` };
  }
  return { ready: true, reason: 'replica following its master' };
}
