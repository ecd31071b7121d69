import { v5 as uuidv5 } from 'uuid';

// Fixed namespace for Shoal's UUIDv5 identities. Never change it: every existing data directory's
// instance and replica set UUIDs are derived from it.
export const SHOAL_UUID_NAMESPACE = '3f0b5c1e-8d47-5a8e-9c6b-2f7a1d9e4b10';

/** instance_uuid of a pod: UUIDv5 of `<namespace>/<cluster>/<pod>` (SPEC §4). */
export function instanceUuid(namespace: string, cluster: string, pod: string): string {
  return uuidv5(`${namespace}/${cluster}/${pod}`, SHOAL_UUID_NAMESPACE);
}

/** replicaset_uuid of a StatefulSet: UUIDv5 of `<namespace>/<cluster>/<statefulset>` (SPEC §4). */
export function replicasetUuid(namespace: string, cluster: string, statefulSet: string): string {
  return uuidv5(`${namespace}/${cluster}/${statefulSet}`, SHOAL_UUID_NAMESPACE);
}
