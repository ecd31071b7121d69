import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '../../common/kube/client.js';
import { KINDS, MERGE_PATCH, Resource } from '../../common/kube/resources.js';
import type { PodStatusJson } from './status.js';

// The few API calls whose exact shape matters (KUBERNETES.md: "What a kubelet must do here").
// How their failures read (status code, unreachable) is common/kube/errors.ts's apiStatus.

const pods = (client: KubeClient, namespace: string): Resource<V1Pod> => new Resource<V1Pod>(client, KINDS.Pod, namespace);

/**
 * Posts a pod's status as a JSON merge patch: lists (conditions, podIPs, containerStatuses) are
 * replaced whole, which a strategic merge patch refuses for a changed podIPs. `metadata.uid` makes
 * the patch fail for a recreated pod of the same name (uid is immutable).
 */
export async function patchPodStatus(client: KubeClient, namespace: string, name: string, uid: string, status: PodStatusJson, signal?: AbortSignal): Promise<void> {
  await pods(client, namespace).patch(name, { metadata: { uid }, status }, MERGE_PATCH, { subresource: 'status', ...(signal ? { signal } : {}) });
}

/** Finishes a graceful deletion: grace 0 with the uid precondition (a wrong uid gets 409). */
export async function deletePodNow(client: KubeClient, namespace: string, name: string, uid: string, signal?: AbortSignal): Promise<void> {
  await pods(client, namespace).delete(
    name,
    { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } },
    signal ? { signal } : {},
  );
}
