// Objects and AdmissionReviews for the webhook tests, shaped like what the API server sends.
import { applyPatch, type Operation } from 'rfc6902';
import type { V1Container, V1Pod, V1StatefulSet, V1Volume } from '@kubernetes/client-node';
import type { InjectOptions } from '../../webhook/inject.js';

export const OPTS: InjectOptions = { agentImage: 'shoal/agent:test', sidecarMode: 'native', agentPort: 8080, version: '9.9.9' };

export function tarantoolContainer(extra: Partial<V1Container> = {}): V1Container {
  return { name: 'tarantool', image: 'tarantool/tarantool:2.11', ports: [{ containerPort: 3301 }], ...extra };
}

/** A pod as the StatefulSet controller creates it. */
export function stsPod(over: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string>; containers?: V1Container[]; owner?: string | null } = {}): V1Pod {
  const name = over.name ?? 'storage-0';
  const owner = over.owner === undefined ? 'storage' : over.owner;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      labels: over.labels ?? { 'shoal.dev/cluster': 'demo', app: 'storage' },
      ...(over.annotations ? { annotations: over.annotations } : {}),
      ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: owner, uid: 'u1', controller: true }] } : {}),
    },
    spec: { containers: over.containers ?? [tarantoolContainer()] },
  };
}

/**
 * The pod as the webhook really receives it: the API server's ServiceAccount admission plugin runs
 * first and mounts the token into every container that has nothing at the path — up to 1.20 a Secret volume named after the
 * token Secret (`legacy`), from 1.21 a projected `kube-api-access-*` volume (`bound`).
 */
export function withAutomountedToken(pod: V1Pod, style: 'legacy' | 'bound' = 'legacy', serviceAccount = 'default'): V1Pod {
  const out = structuredClone(pod);
  const spec = out.spec!;
  spec.serviceAccountName ??= serviceAccount;
  if (spec.automountServiceAccountToken === false) return out; // the pod's word wins over the ServiceAccount's
  const volume: V1Volume =
    style === 'legacy'
      ? { name: `${spec.serviceAccountName}-token-wz82w`, secret: { secretName: `${spec.serviceAccountName}-token-wz82w`, defaultMode: 420 } }
      : { name: 'kube-api-access-x7k2q', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } };
  let mounted = false;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if ((c.volumeMounts ?? []).some((m) => m.mountPath === SA_DIR)) continue;
    (c.volumeMounts ??= []).push({ name: volume.name, readOnly: true, mountPath: SA_DIR });
    mounted = true;
  }
  if (mounted) (spec.volumes ??= []).push(volume);
  return out;
}

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function statefulSet(over: { labels?: Record<string, string>; annotations?: Record<string, string>; strategy?: object | null } = {}): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: 'storage',
      namespace: 'default',
      labels: over.labels ?? { 'shoal.dev/cluster': 'demo' },
      ...(over.annotations ? { annotations: over.annotations } : {}),
    },
    spec: {
      serviceName: 'storage',
      replicas: 3,
      selector: { matchLabels: { app: 'storage' } },
      ...(over.strategy === null ? {} : { updateStrategy: (over.strategy ?? { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }) as object }),
      template: { metadata: { labels: { app: 'storage' } }, spec: { containers: [tarantoolContainer()] } },
    },
  };
}

let seq = 0;
export function review(kind: 'Pod' | 'StatefulSet', object: unknown, operation = 'CREATE', oldObject?: unknown): Record<string, unknown> {
  seq += 1;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${seq}`,
      kind: kind === 'Pod' ? { group: '', version: 'v1', kind } : { group: 'apps', version: 'v1', kind },
      resource: kind === 'Pod' ? { group: '', version: 'v1', resource: 'pods' } : { group: 'apps', version: 'v1', resource: 'statefulsets' },
      operation,
      namespace: 'default',
      name: (object as { metadata?: { name?: string } } | null)?.metadata?.name,
      object,
      ...(oldObject ? { oldObject } : {}),
    },
  };
}

export interface ReviewResponse {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

/** Applies the base64 JSON Patch of a response to a copy of `object`. */
export function applied<T>(object: T, response: ReviewResponse): T {
  const copy = structuredClone(object);
  if (!response.patch) return copy;
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
  const errors = applyPatch(copy, ops).filter((e) => e !== null);
  if (errors.length > 0) throw new Error(`patch did not apply: ${errors.map(String).join(', ')}`);
  return copy;
}
