// The Lease object as the election sees it: read, create, replace-with-resourceVersion. An interface so
// the election loop can be tested against an in-memory fake; `kubeLeaseApi` is the real one.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { isNotFound } from '../../common/kube/errors.js';
import { KINDS, Resource, microTime, timeString, type LeaseJson, type Resources } from '../../common/kube/resources.js';
import { ANNOTATIONS, CLUSTER_LABEL } from '../../common/names.js';
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
export const microNow = (): string => microTime();

export function leaseToRecord(lease: LeaseJson): StoredLease {
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

function specOf(r: LeaseRecord): NonNullable<LeaseJson['spec']> {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    // Microseconds: the 1.20 API server rejects millisecond timestamps.
    ...(r.acquireTime ? { acquireTime: microTime(r.acquireTime) } : {}),
    ...(r.renewTime ? { renewTime: microTime(r.renewTime) } : {}),
    leaseTransitions: r.leaseTransitions,
  };
}

/** The holder's UID travels as an annotation (the Lease spec has no field for it); others' annotations are kept. */
function withHolderUid(metadata: V1ObjectMeta, uid: string): V1ObjectMeta {
  return { ...metadata, annotations: { ...(metadata.annotations ?? {}), [ANNOTATIONS.holderUid]: uid } };
}

export function kubeLeaseApi(kube: Resources, name: string, cluster: string): LeaseApi {
  const { namespace } = kube;
  const leases = new Resource<LeaseJson>(kube.client, KINDS.Lease, namespace);
  let last: LeaseJson | undefined; // keeps labels/annotations others may have set across replaces
  return {
    async get(bound) {
      try {
        last = await leases.get(name, bound);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      return leaseToRecord(last);
    },
    async create(record, bound) {
      const body: LeaseJson = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, labels: { [CLUSTER_LABEL]: cluster }, annotations: { [ANNOTATIONS.holderUid]: record.holderUid } },
        spec: specOf(record),
      };
      last = await leases.create(body, bound);
      return leaseToRecord(last);
    },
    async update(record, resourceVersion, bound) {
      const body: LeaseJson = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: withHolderUid({ ...(last?.metadata ?? { name, namespace }), resourceVersion }, record.holderUid),
        spec: specOf(record),
      };
      last = await leases.replace(name, body, bound);
      return leaseToRecord(last);
    },
  };
}
