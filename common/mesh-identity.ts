// Who a mesh certificate names (SPEC §4): one URI subject alternative name in SPIFFE form,
// spiffe://shoal.dev/ns/<namespace>/cluster/<cluster>/pod/<pod>, as Istio names workloads
// (spiffe://<trust domain>/ns/<ns>/sa/<sa>) but down to the pod: each agent is its own identity.
// The webhook writes it (webhook/mesh-ca.ts), agents read it from their peers' certificates. Pure.

export const MESH_TRUST_DOMAIN = 'shoal.dev';

export interface MeshIdentity {
  namespace: string;
  cluster: string;
  pod: string;
}

// DNS-1123 subdomain characters (pod and namespace names); a cluster is a DNS-1123 label.
const NAME = '[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?';
const URI = new RegExp(`^spiffe://${MESH_TRUST_DOMAIN.replace('.', '\\.')}/ns/(${NAME})/cluster/(${NAME})/pod/(${NAME})$`);

export function meshIdentityUri(id: MeshIdentity): string {
  return `spiffe://${MESH_TRUST_DOMAIN}/ns/${id.namespace}/cluster/${id.cluster}/pod/${id.pod}`;
}

/** The identity in a URI, or null when it is not one of ours. */
export function parseMeshIdentityUri(uri: string): MeshIdentity | null {
  const m = URI.exec(uri);
  if (!m) return null;
  return { namespace: m[1] as string, cluster: m[3] as string, pod: m[5] as string };
}

/**
 * The identity named by a certificate's subjectAltName as Node's X509Certificate shows it
 * ("DNS:x, URI:spiffe://…, IP Address:…"): exactly one URI of ours, else null (none, or two that
 * could disagree).
 */
export function meshIdentityFromSan(subjectAltName: string | undefined): MeshIdentity | null {
  if (!subjectAltName) return null;
  const found = subjectAltName
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => parseMeshIdentityUri(entry.slice(4)))
    .filter((id): id is MeshIdentity => id !== null);
  return found.length === 1 ? (found[0] as MeshIdentity) : null;
}
