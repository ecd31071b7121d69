// The cluster's StatefulSets (label shoal.dev/cluster=<cluster>): one per replica set, with the
// user's run-time switches read from annotations.
import type { V1StatefulSet } from '@kubernetes/client-node';
import { ANNOTATIONS, CLUSTER_LABEL } from '../../common/names.js';
import type { Resources } from '../../common/kube/resources.js';
import { MappedWatch, type WatcherOptions } from './mapped.js';
import { roleFromAnnotation, type ShardingRole } from '../decide/sharding.js';

export type FailoverMode = 'auto' | 'manual';

export interface ReplicaSetSpec {
  name: string;
  uid: string;
  /** spec.replicas (Kubernetes' default 1 when unset). */
  replicas: number;
  /** status.updateRevision: pods whose controller-revision-hash differs are out of date. */
  updateRevision: string | null;
  currentRevision: string | null;
  readyReplicas: number;
  failover: FailoverMode;
  paused: boolean;
  /** shoal.dev/tarantool-container, or null for "the first container". */
  tarantoolContainer: string | null;
  /** shoal.dev/sharding-role (null: absent or not understood); the Tarantool config's role wins over it (decide/sharding.ts). */
  shardingRole: ShardingRole | null;
  /** Annotation values that could not be understood, as sentences for a Warning event. */
  problems: string[];
}

/** Maps a StatefulSet to the replica set spec. Pure; unknown annotation values fall back safely. */
export function statefulSetToSpec(sts: V1StatefulSet): ReplicaSetSpec {
  const meta = sts.metadata ?? {};
  const ann = meta.annotations ?? {};
  const problems: string[] = [];

  const failoverRaw = ann[ANNOTATIONS.failover];
  let failover: FailoverMode = 'auto';
  if (failoverRaw === 'manual') failover = 'manual';
  else if (failoverRaw !== undefined && failoverRaw !== 'auto') {
    // Someone meant to change the default, and the only other choice is manual: the safe reading.
    failover = 'manual';
    problems.push(`annotation ${ANNOTATIONS.failover}="${failoverRaw}" is neither "auto" nor "manual"; treating it as "manual"`);
  }

  const pausedRaw = ann[ANNOTATIONS.paused];
  const paused = pausedRaw === 'true';
  if (pausedRaw !== undefined && pausedRaw !== 'true' && pausedRaw !== 'false') {
    problems.push(`annotation ${ANNOTATIONS.paused}="${pausedRaw}" is neither "true" nor "false"; treating it as "false"`);
  }

  const sharding = roleFromAnnotation(ann[ANNOTATIONS.shardingRole], ANNOTATIONS.shardingRole);
  problems.push(...sharding.problems);

  return {
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    replicas: sts.spec?.replicas ?? 1,
    updateRevision: sts.status?.updateRevision || null,
    currentRevision: sts.status?.currentRevision || null,
    readyReplicas: sts.status?.readyReplicas ?? 0,
    failover,
    paused,
    tarantoolContainer: ann[ANNOTATIONS.tarantoolContainer] || null,
    shardingRole: sharding.role,
    problems,
  };
}

/** Watches the cluster's StatefulSets: `current` is the live map name → ReplicaSetSpec. */
export class StatefulSetWatcher extends MappedWatch<V1StatefulSet, ReplicaSetSpec> {
  constructor(kube: Resources, cluster: string, opts: WatcherOptions) {
    const labelSelector = `${CLUSTER_LABEL}=${cluster}`;
    super(
      kube.client,
      { what: `StatefulSets labelled ${labelSelector}`, path: kube.statefulSets.path, labelSelector },
      statefulSetToSpec,
      opts,
    );
  }
}
