import { mkdir } from 'node:fs/promises';
import type { AuthenticationV1TokenRequest, V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '../../common/kube/client.js';
import { isNotFound } from '../../common/kube/errors.js';
import { namespaced, persistentVolumes } from '../../common/kube/resources.js';
import type { ObjectData } from './env.js';
import type { PodRef } from './events.js';
import { referencedObjects } from './refs.js';
import { VolumeError, type FetchedObjects } from './volumes.js';

// What a pod's volumes and environment need from the API before its containers can start: the
// Secrets and ConfigMaps it references, its claims' volumes, ServiceAccount tokens.

function decodeData(data: Record<string, string> | undefined, base64: boolean): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, base64 ? 'base64' : 'utf8');
  return out;
}

function asStrings(m: Map<string, Record<string, Buffer> | null>): Map<string, Record<string, string> | null> {
  const out = new Map<string, Record<string, string> | null>();
  for (const [name, data] of m) {
    out.set(name, data && Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString('utf8')])));
  }
  return out;
}

/** The fetched objects as text, for environment variables. */
export function objectStrings(objects: FetchedObjects): ObjectData {
  return { secrets: asStrings(objects.secrets), configMaps: asStrings(objects.configMaps) };
}

/** Every Secret and ConfigMap the pod references; an absent one is null (what needs it fails later). */
export async function fetchObjects(client: KubeClient, pod: V1Pod, namespace: string, signal?: AbortSignal): Promise<FetchedObjects> {
  const refs = referencedObjects(pod);
  const objects: FetchedObjects = { secrets: new Map(), configMaps: new Map() };
  const kube = namespaced(client, namespace);
  const o = signal ? { signal } : {};
  const absent = (err: unknown): null => {
    if (isNotFound(err)) return null;
    throw err;
  };
  for (const name of refs.secrets) {
    const s = await kube.secrets.get(name, o).catch(absent);
    objects.secrets.set(name, s ? decodeData(s.data, true) : null);
  }
  for (const name of refs.configMaps) {
    const m = await kube.configMaps.get(name, o).catch(absent);
    objects.configMaps.set(name, m ? { ...decodeData(m.data, false), ...decodeData(m.binaryData, true) } : null);
  }
  return objects;
}

/** The host directory of a bound claim's volume (created when missing). */
export async function claimPath(client: KubeClient, namespace: string, claimName: string, signal?: AbortSignal): Promise<string> {
  const o = signal ? { signal } : {};
  const pvc = await namespaced(client, namespace).persistentVolumeClaims.get(claimName, o);
  const pvName = pvc.spec?.volumeName;
  if (!pvName || pvc.status?.phase !== 'Bound') throw new VolumeError(`persistentvolumeclaim "${claimName}" is not bound yet`);
  const pv = await persistentVolumes(client).get(pvName, o);
  const p = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
  if (!p) throw new VolumeError(`persistentvolume "${pvName}" has neither local.path nor hostPath.path`);
  await mkdir(p, { recursive: true });
  return p;
}

/** A token of the pod's ServiceAccount, bound to the pod (a projected serviceAccountToken volume). */
export async function serviceAccountToken(
  client: KubeClient,
  pod: PodRef,
  serviceAccountName: string | undefined,
  audience: string | undefined,
  expirationSeconds: number | undefined,
  signal?: AbortSignal,
): Promise<string> {
  // The TokenRequest subresource; its answer's status.expirationTimestamp is not read (the volume
  // is written once per start).
  const request: AuthenticationV1TokenRequest = {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences: audience ? [audience] : [],
      expirationSeconds: expirationSeconds ?? 3600,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
    },
  };
  const tr = await namespaced(client, pod.namespace).serviceAccounts.createSubresource<AuthenticationV1TokenRequest>(
    serviceAccountName ?? 'default',
    'token',
    request,
    signal ? { signal } : {},
  );
  return tr.status?.token ?? '';
}
