// What the API fault proxy (api-fault-proxy.ts) does with one request while a fault window is
// open: forward it, answer 500, answer 409 (writes only), or forward it late. Pure: the random
// source is passed in, so one seed gives one sequence of decisions.

export type InjectedKind = 'error' | 'conflict' | 'slow';

export type FaultDecision = { kind: 'forward' } | { kind: 'error' } | { kind: 'conflict' } | { kind: 'slow'; delayMs: number };

export interface FaultWindow {
  /** Uniform in [0, 1); a seeded PRNG makes the window reproducible. */
  random(): number;
  /** Fraction of requests that get a fault, in [0, 1]. */
  rate: number;
  /** A slow request waits uniformly in [min, max] ms before it is forwarded. */
  slowMs: readonly [number, number];
}

const WRITES = new Set(['POST', 'PUT', 'PATCH']);

/** A write may conflict; any request may fail or be slow. Always three draws, so the sequence does not depend on the methods seen. */
export function decideFault(w: FaultWindow, method: string | undefined): FaultDecision {
  const hit = w.random();
  const which = w.random();
  const delay = w.random();
  if (hit >= w.rate) return { kind: 'forward' };
  const kinds: readonly InjectedKind[] = WRITES.has((method ?? '').toUpperCase()) ? ['error', 'conflict', 'slow'] : ['error', 'slow'];
  const kind = kinds[Math.min(kinds.length - 1, Math.floor(which * kinds.length))] ?? 'error';
  if (kind !== 'slow') return { kind };
  const [min, max] = w.slowMs;
  return { kind: 'slow', delayMs: Math.round(min + delay * (max - min)) };
}

/** The object a request path names: `/api/v1/namespaces/ns/configmaps/x` → configmaps "x". */
export function pathObject(url: string | undefined): { resource: string; name: string } {
  const parts = (url ?? '').split('?')[0]?.split('/').filter(Boolean) ?? [];
  // /api/v1/... or /apis/<group>/<version>/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  const tail = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  return { resource: tail[0] ?? '', name: tail[1] ?? '' };
}

/** `?watch=true` / `?watch=1`, or the old `/watch/` paths. */
export function isWatch(url: string | undefined): boolean {
  const u = new URL(url ?? '/', 'https://x');
  const w = u.searchParams.get('watch');
  return w === 'true' || w === '1' || /^\/(?:api|apis\/[^/]+)\/[^/]+\/watch\//.test(u.pathname);
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: { name?: string; kind?: string };
  code: number;
}

/** A Status as the API server writes it for an internal error. */
export function internalErrorStatus(): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Internal error occurred: injected by the API fault proxy',
    reason: 'InternalError',
    code: 500,
  };
}

/**
 * A 409 as the API server writes it: `Conflict` (stale resourceVersion) for an update or patch,
 * `AlreadyExists` for a create (the 409 a POST really gets).
 */
export function conflictStatus(method: string | undefined, url: string | undefined): StatusBody {
  const { resource, name } = pathObject(url);
  const details = { ...(name ? { name } : {}), ...(resource ? { kind: resource } : {}) };
  if ((method ?? '').toUpperCase() === 'POST') {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `${name ? `${resource} "${name}"` : resource} already exists`, reason: 'AlreadyExists', details, code: 409 };
  }
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    reason: 'Conflict',
    details,
    code: 409,
  };
}
