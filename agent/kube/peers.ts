// The cluster's pods (label shoal.dev/cluster=<cluster>) as a live map of peers: who exists, where,
// in which replica set, how far along. Agents find each other here, never through Endpoints.
import type { V1Pod } from '@kubernetes/client-node';
import { CLUSTER_LABEL, REVISION_LABEL } from '../../common/names.js';
import type { Resources } from '../../common/kube/resources.js';
import { MappedWatch, type WatcherOptions } from './mapped.js';

export interface Peer {
  pod: string;
  uid: string;
  /** status.podIP; null until the pod has one. */
  ip: string | null;
  /** The owning StatefulSet (the replica set), or null for a pod without one. */
  replicaset: string | null;
  /** The StatefulSet ordinal from the name `<statefulset>-<n>`, or null. */
  ordinal: number | null;
  ready: boolean;
  /** deletionTimestamp is set: the pod is going away. */
  deleting: boolean;
  /** The controller-revision-hash label: the StatefulSet revision it was created from. */
  revision: string | null;
  phase: string;
}

/** Maps a pod (typed from a list or raw JSON from a watch: same shape) to a Peer. Pure. */
export function podToPeer(pod: V1Pod): Peer {
  const meta = pod.metadata ?? {};
  const name = meta.name ?? '';
  const owner = (meta.ownerReferences ?? []).find((o) => o.kind === 'StatefulSet' && o.controller);
  const replicaset = owner?.name ?? null;
  let ordinal: number | null = null;
  if (replicaset && name.startsWith(`${replicaset}-`)) {
    const suffix = name.slice(replicaset.length + 1);
    if (/^(0|[1-9][0-9]{0,8})$/.test(suffix)) ordinal = Number(suffix);
  }
  const ready = (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  return {
    pod: name,
    uid: meta.uid ?? '',
    ip: pod.status?.podIP || null,
    replicaset,
    ordinal,
    ready,
    deleting: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null,
    revision: meta.labels?.[REVISION_LABEL] ?? null,
    phase: pod.status?.phase ?? 'Unknown',
  };
}

/** Watches the cluster's pods: `current` is the live map pod name → Peer. */
export class PeerWatcher extends MappedWatch<V1Pod, Peer> {
  constructor(kube: Resources, cluster: string, opts: WatcherOptions) {
    const labelSelector = `${CLUSTER_LABEL}=${cluster}`;
    super(
      kube.client,
      { what: `pods labelled ${labelSelector}`, path: kube.pods.path, labelSelector },
      podToPeer,
      opts,
    );
  }
}
