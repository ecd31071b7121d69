// The mesh's two pure decisions about certificates: is this peer who it says it is (and someone we
// know), and when to renew our own certificate. The TLS handshake has already proved the chain
// (the webhook's CA) and the key; what is left is the name. Pure: no I/O, no clock.
import type { MeshIdentity } from '../../common/mesh-identity.js';

export type PeerRefusal = 'no_identity' | 'wrong_namespace' | 'wrong_cluster' | 'claim_mismatch' | 'unknown_pod';

export type PeerVerdict = { ok: true; pod: string } | { ok: false; reason: PeerRefusal; detail: string };

export interface PeerCheck {
  /** What the peer's certificate names (null: no mesh identity in it). */
  identity: MeshIdentity | null;
  /** This agent's namespace and cluster: a peer must share both. */
  namespace: string;
  cluster: string;
  /** The pod the peer says it is (a header, a message's sender), or undefined when it says nothing. */
  claimed?: string | undefined;
  /** The pod this agent expects on the link (the one it dialled), or undefined for an inbound link. */
  expected?: string | undefined;
  /** Whether the pod watch lists this pod. */
  known: (pod: string) => boolean;
}

/** Accepts a peer only when its certificate names a pod of this cluster that it claims, we expect and we know. */
export function judgePeer(c: PeerCheck): PeerVerdict {
  const id = c.identity;
  if (!id) return { ok: false, reason: 'no_identity', detail: 'the certificate names no Shoal mesh identity' };
  if (id.namespace !== c.namespace) return { ok: false, reason: 'wrong_namespace', detail: `certificate of namespace ${id.namespace}, this is ${c.namespace}` };
  if (id.cluster !== c.cluster) return { ok: false, reason: 'wrong_cluster', detail: `certificate of cluster ${id.cluster}, this is ${c.cluster}` };
  if (c.claimed !== undefined && c.claimed !== id.pod) return { ok: false, reason: 'claim_mismatch', detail: `certificate of pod ${id.pod} claims to be ${c.claimed}` };
  if (c.expected !== undefined && c.expected !== id.pod) return { ok: false, reason: 'claim_mismatch', detail: `dialled ${c.expected}, the certificate is ${id.pod}'s` };
  if (!c.known(id.pod)) return { ok: false, reason: 'unknown_pod', detail: `pod ${id.pod} is not in the watched pod list (yet)` };
  return { ok: true, pod: id.pod };
}

/**
 * When to renew a certificate valid from `notBefore` to `notAfter` (epoch ms): at half its life, as
 * kubelet and Istio do, so a failing CA leaves half the lifetime to retry in (with backoff, by the
 * caller); a certificate past its half life is renewed at once.
 */
export function renewalDelay(notBefore: number, notAfter: number, now: number): number {
  const halfLife = notBefore + (notAfter - notBefore) / 2;
  return Math.max(0, Math.round(halfLife - now));
}
