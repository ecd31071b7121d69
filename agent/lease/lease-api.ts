// The Lease object as the election sees it: read, create, replace-with-resourceVersion. An interface so
// the election loop can be tested against an in-memory fake; `kubeLeaseApi` is the real one.
import { V1MicroTime, type V1Lease, type V1ObjectMeta } from '@kubernetes/client-node';
import { ANNOTATIONS, CLUSTER_LABEL } from '../../shared/names.js';
import { isNotFound, kubeCall, type KubeClients } from '../kube/client.js';
import type { LeaseRecord } from './timing.js';

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

export interface RequestBound {
  signal: AbortSignal;
  timeoutMs: number;
}

export interface LeaseApi {
  /** null when the Lease does not exist. */
  get(bound: RequestBound): Promise<StoredLease | null>;
  /** Rejects with a 409 AlreadyExists KubeApiError when another pod created it first. */
  create(record: LeaseRecord, bound: RequestBound): Promise<StoredLease>;
  /** Rejects with a 409 Conflict KubeApiError when `resourceVersion` is stale (someone else wrote). */
  update(record: LeaseRecord, resourceVersion: string, bound: RequestBound): Promise<StoredLease>;
}

/** The wall clock in the microsecond format the API server requires for MicroTime fields. */
export const microNow = (): string => new V1MicroTime().toISOString();

function timeString(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? v : '';
}

export function leaseToRecord(lease: V1Lease): StoredLease {
  const spec = lease.spec ?? {};
  return {
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: timeString(spec.acquireTime),
      renewTime: timeString(spec.renewTime),
      leaseTransitions: spec.leaseTransitions ?? 0,
      holderUid: lease.metadata?.annotations?.[ANNOTATIONS.holderUid] ?? '',
    },
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  };
}

function specOf(r: LeaseRecord): NonNullable<V1Lease['spec']> {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    // V1MicroTime serialises with microseconds: the 1.20 API server rejects millisecond timestamps.
    ...(r.acquireTime ? { acquireTime: new V1MicroTime(r.acquireTime) } : {}),
    ...(r.renewTime ? { renewTime: new V1MicroTime(r.renewTime) } : {}),
    leaseTransitions: r.leaseTransitions,
  };
}

/** The holder's UID travels as an annotation (the Lease spec has no field for it); others' annotations are kept. */
function withHolderUid(metadata: V1ObjectMeta, uid: string): V1ObjectMeta {
  return { ...metadata, annotations: { ...(metadata.annotations ?? {}), [ANNOTATIONS.holderUid]: uid } };
}

export function kubeLeaseApi(kube: KubeClients, name: string, cluster: string): LeaseApi {
  const { namespace, coordination } = kube;
  let last: V1Lease | undefined; // keeps labels/annotations others may have set across replaces
  const what = (verb: string): string => `${verb} Lease ${namespace}/${name}`;
  return {
    async get(bound) {
      try {
        last = await kubeCall(what('read'), (o) => coordination.readNamespacedLease({ name, namespace }, o), bound);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      return leaseToRecord(last);
    },
    async create(record, bound) {
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, labels: { [CLUSTER_LABEL]: cluster }, annotations: { [ANNOTATIONS.holderUid]: record.holderUid } },
        spec: specOf(record),
      };
      last = await kubeCall(what('create'), (o) => coordination.createNamespacedLease({ namespace, body }, o), bound);
      return leaseToRecord(last);
    },
    async update(record, resourceVersion, bound) {
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: withHolderUid({ ...(last?.metadata ?? { name, namespace }), resourceVersion }, record.holderUid),
        spec: specOf(record),
      };
      last = await kubeCall(what('replace'), (o) => coordination.replaceNamespacedLease({ name, namespace, body }, o), bound);
      return leaseToRecord(last);
    },
  };
}
