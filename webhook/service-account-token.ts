// Who in a Shoal pod holds its ServiceAccount token (issue 14): the agent alone. The agent's Role
// deletes pods and reads and writes the cluster's Secret, ConfigMap and Lease; Tarantool runs the
// application's Lua, which must not hold those rights. Pure: a pod spec in, a decision with its reason out.
//
// The webhook runs after the API server's ServiceAccount admission plugin, which has already mounted
// the token into every container the user wrote (a Secret volume `<sa>-token-xxxxx` up to 1.20, a
// projected `kube-api-access-xxxxx` from 1.21). So Shoal sets `automountServiceAccountToken: false`
// (the plugin, run again after a webhook changed the pod, then adds nothing), takes the plugin's
// mount out of every container, and gives the agent its own projected token — the volume Kubernetes
// itself builds for `kube-api-access-*`, so the agent sees the files it would see anywhere.
// A pod that sets `automountServiceAccountToken: true` itself asked for the token everywhere: Shoal
// respects that, and says so (log reason and an admission warning).
import type { V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { AGENT_CONTAINER, API_ACCESS_VOLUME, MESH_CA_AUDIENCE, MESH_CA_TOKEN_DIR, MESH_CA_VOLUME, SERVICE_ACCOUNT_DIR } from '../common/names.js';
import { isRecord } from './json.js';

/** Kubernetes' own lifetime for `kube-api-access-*` tokens (1 h 7 s; the API server may extend such tokens). */
export const TOKEN_EXPIRATION_SECONDS = 3607;
/** The ConfigMap every namespace carries with the cluster's CA (the RootCAConfigMap controller). */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

/** The agent's credentials: the shape of Kubernetes' `kube-api-access-*` volume. */
export function apiAccessVolume(): V1Volume {
  return {
    name: API_ACCESS_VOLUME,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } },
        { configMap: { name: ROOT_CA_CONFIGMAP, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

export function apiAccessMount(): V1VolumeMount {
  return { name: API_ACCESS_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true };
}

/**
 * The token the agent shows the webhook's mesh CA (webhook/mesh-ca.ts): pod-bound like the API token,
 * but of audience shoal.dev/mesh-ca, so the API server refuses it and only TokenReview with that
 * audience accepts it. The kubelet refreshes it (TokenRequest) before it expires; the agent re-reads it.
 */
export function meshCaTokenVolume(): V1Volume {
  return {
    name: MESH_CA_VOLUME,
    projected: {
      defaultMode: 0o644,
      sources: [{ serviceAccountToken: { audience: MESH_CA_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } }],
    },
  };
}

export function meshCaTokenMount(): V1VolumeMount {
  return { name: MESH_CA_VOLUME, mountPath: MESH_CA_TOKEN_DIR, readOnly: true };
}

export type TokenDecision =
  /** The agent alone holds a token: these mounts and volumes of the admission plugin go. */
  | {
      kind: 'agent-only';
      /** Set `automountServiceAccountToken: false` (it is not false yet). */
      disableAutomount: boolean;
      /** The plugin's token mount to take out of each of these containers: container → volume. */
      unmount: Array<{ container: string; volume: string }>;
      /** The plugin's token volumes no container mounts any more. */
      dropVolumes: string[];
      reason: string;
    }
  /** The pod itself set `automountServiceAccountToken: true`: every container keeps the token. */
  | { kind: 'every-container'; reason: string; warning: string };

const atServiceAccountDir = (m: V1VolumeMount): boolean => m.mountPath.replace(/\/+$/, '') === SERVICE_ACCOUNT_DIR;

/** A volume the ServiceAccount admission plugin adds for `serviceAccount` (legacy Secret or bound projected). */
export function isAutomountedTokenVolume(v: unknown, serviceAccount: string): boolean {
  if (!isRecord(v) || typeof v.name !== 'string') return false;
  if (isRecord(v.secret)) {
    const secretName = v.secret.secretName;
    return typeof secretName === 'string' && secretName.startsWith(`${serviceAccount}-token-`);
  }
  return v.name.startsWith('kube-api-access-') && isRecord(v.projected);
}

/** Who gets the ServiceAccount token in this pod (the spec as the webhook receives it). */
export function decideServiceAccountToken(spec: V1PodSpec): TokenDecision {
  if (spec.automountServiceAccountToken === true) {
    return {
      kind: 'every-container',
      reason: 'ServiceAccount token: in every container (the pod sets automountServiceAccountToken: true)',
      warning:
        'spec.automountServiceAccountToken is true: every container of this pod, Tarantool included, holds the ' +
        'ServiceAccount token with the Shoal agent’s rights. Shoal leaves it so; remove the field to give the token to the agent alone',
    };
  }
  const serviceAccount = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default';
  const automounted = new Set((spec.volumes ?? []).filter((v) => isAutomountedTokenVolume(v, serviceAccount)).map((v) => v.name));
  const unmount: Array<{ container: string; volume: string }> = [];
  const ownMounts: string[] = [];
  const stillMounted = new Set<string>();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const m of c.volumeMounts ?? []) {
      const plugins = automounted.has(m.name);
      if (c.name !== AGENT_CONTAINER && plugins && atServiceAccountDir(m)) unmount.push({ container: c.name, volume: m.name });
      else if (plugins) stillMounted.add(m.name);
      else if (c.name !== AGENT_CONTAINER && atServiceAccountDir(m)) ownMounts.push(`${c.name} (volume ${m.name})`);
    }
  }
  const dropVolumes = [...automounted].filter((v) => !stillMounted.has(v));
  const parts = ['ServiceAccount token: agent only'];
  if (unmount.length > 0) parts.push(`unmounted from ${unmount.map((u) => u.container).join(', ')}`);
  if (ownMounts.length > 0) parts.push(`left the pod's own mounts at ${SERVICE_ACCOUNT_DIR} in ${ownMounts.join(', ')}`);
  return { kind: 'agent-only', disableAutomount: spec.automountServiceAccountToken !== false, unmount, dropVolumes, reason: parts.join('; ') };
}

/** Carries out an `agent-only` decision on a copy of the spec (the agent's own volume is added by the caller). */
export function applyTokenDecision(spec: V1PodSpec, d: TokenDecision): void {
  if (d.kind !== 'agent-only') return;
  if (d.disableAutomount) spec.automountServiceAccountToken = false;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const gone = new Set(d.unmount.filter((u) => u.container === c.name).map((u) => u.volume));
    if (gone.size > 0 && c.volumeMounts) c.volumeMounts = c.volumeMounts.filter((m) => !(gone.has(m.name) && atServiceAccountDir(m)));
  }
  if (d.dropVolumes.length > 0 && spec.volumes) {
    const drop = new Set(d.dropVolumes);
    spec.volumes = spec.volumes.filter((v) => !drop.has(v.name));
  }
}
