// The webhook as the mesh's certificate authority (SPEC §2, DESIGN "Mesh identity"). An agent sends
// its public key with its pod's projected ServiceAccount token of audience shoal.dev/mesh-ca; the
// API server's TokenReview says which pod the token is bound to, the pod must carry the cluster
// label, and the certificate names exactly that pod (common/mesh-identity.ts). The decisions are
// pure; issuing signs with the webhook's CA (selfsigned, as tls.ts does). Private keys stay in pods.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { V1Pod, V1TokenReviewStatus } from '@kubernetes/client-node';
import { generate } from 'selfsigned';
import { CLUSTER_LABEL, MESH_CA_AUDIENCE } from '../common/names.js';
import { meshIdentityUri, type MeshIdentity } from '../common/mesh-identity.js';

/** What Kubernetes puts into a pod-bound ServiceAccount token's user.extra (apiserver serviceaccount/util.go). */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** Mesh certificates live a day; agents renew at half life (agent/mesh/identity.ts). */
export const MESH_CERT_HOURS = 24;

export type Refusal = { status: 400 | 401 | 403; reason: string };

/** The pod a TokenReview answer names, or why the caller is refused. */
export interface TokenPod {
  namespace: string;
  pod: string;
  uid: string;
  serviceAccount: string;
}

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

export function podFromReview(status: V1TokenReviewStatus): TokenPod | Refusal {
  if (!status.authenticated) return { status: 401, reason: `the token is not valid${status.error ? ` (${status.error})` : ''}: mount a projected ServiceAccount token with audience ${MESH_CA_AUDIENCE}` };
  if (!(status.audiences ?? []).includes(MESH_CA_AUDIENCE)) return { status: 401, reason: `the token is not for audience ${MESH_CA_AUDIENCE}` };
  const sa = SA_USER.exec(status.user?.username ?? '');
  if (!sa) return { status: 403, reason: `${status.user?.username ?? 'the caller'} is not a ServiceAccount` };
  const extra = status.user?.extra ?? {};
  const pod = extra[POD_NAME_EXTRA]?.[0];
  const uid = extra[POD_UID_EXTRA]?.[0];
  if (!pod || !uid) return { status: 403, reason: 'the token is not bound to a pod: use a projected serviceAccountToken volume, not a Secret token' };
  return { namespace: sa[1] as string, serviceAccount: sa[2] as string, pod, uid };
}

/** The identity the certificate may name: the token's pod, if it is that same pod (uid) of a Shoal cluster. */
export function identityOf(caller: TokenPod, pod: V1Pod | null): MeshIdentity | Refusal {
  const where = `pod ${caller.namespace}/${caller.pod}`;
  if (!pod) return { status: 403, reason: `${where} does not exist` };
  if (pod.metadata?.uid !== caller.uid) return { status: 403, reason: `${where} was replaced (the token belongs to uid ${caller.uid})` };
  const cluster = pod.metadata?.labels?.[CLUSTER_LABEL];
  if (!cluster) return { status: 403, reason: `${where} has no ${CLUSTER_LABEL} label: only Shoal pods get mesh certificates` };
  return { namespace: caller.namespace, cluster, pod: caller.pod };
}

/** The caller's public key (SPKI PEM), if it is an EC P-256 key — what the agents generate. */
export function parsePublicKey(body: unknown): KeyObject | Refusal {
  const pem = typeof body === 'object' && body !== null ? (body as { publicKey?: unknown }).publicKey : undefined;
  if (typeof pem !== 'string') return { status: 400, reason: 'send JSON {"publicKey": "<SPKI PEM>"}' };
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return { status: 400, reason: 'publicKey is not a PEM public key' };
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return { status: 400, reason: 'publicKey must be an EC P-256 key' };
  return key;
}

export const isRefusal = (v: object): v is Refusal => 'status' in v && 'reason' in v;

/**
 * A certificate for `identity` on `publicKey`, signed by the CA: CN the pod, one URI SAN (the
 * identity), client and server use, valid from a minute ago (clock skew) for MESH_CERT_HOURS.
 * selfsigned signs the public key it is given; the private half of `keyPair` only fills a field of
 * its answer that is thrown away, so a throwaway key stands in for the agent's, which never leaves it.
 */
export async function issueMeshCertificate(ca: { cert: string; key: string }, publicKey: KeyObject, identity: MeshIdentity, now = new Date()): Promise<string> {
  const throwaway = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const issued = await generate([{ name: 'commonName', value: identity.pod }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ca,
    keyPair: {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      privateKey: throwaway.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + MESH_CERT_HOURS * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 6, value: meshIdentityUri(identity) }] },
    ],
  });
  return issued.cert;
}
