// The cluster's one secret: Secret `shoal-<cluster>-mesh`, key `token`. The first agent creates it
// (a 409 on create means another agent won: read theirs). The Tarantool replication password is
// derived from it, so there is exactly one secret to manage and rotate.
import { createHmac, randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { ShoalError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { CLUSTER_LABEL, MESH_TOKEN_KEY, meshSecretName } from '../../common/names.js';
import { isAlreadyExists, isNotFound } from '../../common/kube/errors.js';
import type { Resources } from '../../common/kube/resources.js';

/** Shortest token accepted from a user-made Secret: 32 characters ≈ 190 bits as base64url. */
export const MIN_TOKEN_LENGTH = 32;

/** A new token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The replication user's password: HMAC-SHA256(token, "shoal-replication") in hex. */
export function replicationPassword(token: string): string {
  return createHmac('sha256', token).update('shoal-replication').digest('hex');
}

export interface MeshSecret {
  token: string;
  /** True when this call created the Secret. */
  created: boolean;
}

function tokenOf(secret: V1Secret, name: string): string {
  const b64 = secret.data?.[MESH_TOKEN_KEY];
  const token = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : secret.stringData?.[MESH_TOKEN_KEY];
  const hint = `delete Secret ${name} to let the agents create a fresh one, or put a token of at least ${MIN_TOKEN_LENGTH} characters under key "${MESH_TOKEN_KEY}"`;
  if (token === undefined) throw new ShoalError(`Secret ${name} has no key "${MESH_TOKEN_KEY}"`, hint);
  const trimmed = token.trim();
  if (trimmed.length < MIN_TOKEN_LENGTH) throw new ShoalError(`the token in Secret ${name} is too short (${trimmed.length} characters)`, hint);
  return trimmed;
}

/** Reads the mesh Secret, creating it when absent. Bounded: a few read/create rounds, then an error. */
export async function getOrCreateMeshSecret(kube: Resources, cluster: string, logger: Logger, signal: AbortSignal): Promise<MeshSecret> {
  const { namespace, secrets } = kube;
  const name = meshSecretName(cluster);
  const read = (): Promise<V1Secret> => secrets.get(name, { signal });
  // Absent → create; lost the create race → read; deleted meanwhile → again. Three rounds is plenty.
  for (let round = 0; round < 3; round++) {
    try {
      return { token: tokenOf(await read(), name), created: false };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name, namespace, labels: { [CLUSTER_LABEL]: cluster } },
      data: { [MESH_TOKEN_KEY]: Buffer.from(generateToken()).toString('base64') },
    };
    try {
      const created = await secrets.create(body, { signal });
      logger.info({ secret: name }, 'created the cluster mesh secret');
      return { token: tokenOf(created, name), created: true };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      logger.debug({ secret: name }, 'another agent created the mesh secret first; reading it');
    }
  }
  throw new ShoalError(`Secret ${namespace}/${name} keeps appearing and disappearing`, 'check what deletes it (kubectl get events)');
}
