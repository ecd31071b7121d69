import { PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import type { PodStatusJson } from './status.js';

// The few API calls whose exact shape matters (KUBERNETES.md: "What a kubelet must do here").
// How their failures read (status code, unreachable) is shared/kube/errors.ts's apiStatus.

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Posts a pod's status as a JSON merge patch: lists (conditions, podIPs, containerStatuses) are
 * replaced whole, which a strategic merge patch refuses for a changed podIPs. `metadata.uid` makes
 * the patch fail for a recreated pod of the same name (uid is immutable).
 */
export async function patchPodStatus(core: CoreV1Api, namespace: string, name: string, uid: string, status: PodStatusJson): Promise<void> {
  await core.patchNamespacedPodStatus({ name, namespace, body: { metadata: { uid }, status } }, MERGE_PATCH);
}

/** Finishes a graceful deletion: grace 0 with the uid precondition (a wrong uid gets 409). */
export async function deletePodNow(core: CoreV1Api, namespace: string, name: string, uid: string): Promise<void> {
  await core.deleteNamespacedPod({
    name,
    namespace,
    body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } },
  });
}

export { MERGE_PATCH };
