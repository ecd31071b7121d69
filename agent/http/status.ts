// The /status document (SPEC §4). The local part comes from the instance; coordinator, mesh,
// replica sets and rollout come from a provider the coordinator installs (empty until then).
import type { AgentStatus, StatusReplicaSet, StatusSharding, StatusUpstream } from '../../common/status.js';
import type { InstanceIdentity } from '../instance/identity.js';
import type { InstanceState, Role } from '../instance/state.js';
import type { Vclock } from '../tarantool/vclock.js';
import { unsupportedVersion } from '../tarantool/version.js';

// The cluster half's parts are exactly those of common/status.ts, which the `shoal status` CLI reads.
export type CoordinatorStatus = AgentStatus['coordinator'];
export type MeshPeerStatus = AgentStatus['mesh'][number];
export type ReplicasetStatus = StatusReplicaSet;
export type RolloutStatus = NonNullable<AgentStatus['rollout']>;

/** The cluster half of /status. */
export interface ClusterStatus {
  coordinator: CoordinatorStatus | null;
  mesh: MeshPeerStatus[];
  replicasets: ReplicasetStatus[];
  rollout: RolloutStatus | null;
  /** SPEC §4b; absent when nothing is sharded. */
  sharding?: StatusSharding;
}

/** Implemented by the coordinator; the agent's server asks it on every /status. */
export interface ClusterStatusProvider {
  clusterStatus(): ClusterStatus | Promise<ClusterStatus>;
}

export const NO_CLUSTER_STATUS: ClusterStatus = { coordinator: null, mesh: [], replicasets: [], rollout: null };

export interface InstanceStatus {
  uuid: string;
  id: number | null;
  listen: string;
  role: Role;
  ro: boolean | null;
  status: string;
  phase: string;
  vclock: Vclock;
  lag: number | null;
  pid: number | null;
  upstreams: StatusUpstream[];
  version: string | null;
  synchro: { owner: number; term: number; len: number } | null;
  roReason: string | null;
  name: string | null;
  style: 'lua' | 'native' | null;
  error?: string;
}

export interface StatusDocument extends ClusterStatus {
  cluster: string;
  namespace: string;
  pod: string;
  replicaset: string;
  instance: InstanceStatus;
}

/** Builds /status from the identity, the instance state (or why it could not be read) and the cluster part. */
export function statusDocument(identity: InstanceIdentity, state: InstanceState | { error: string }, cluster: ClusterStatus): StatusDocument {
  const refused = 'error' in state ? null : unsupportedVersion(state.version);
  const instance: InstanceStatus =
    'error' in state
      ? {
          uuid: identity.instanceUuid,
          id: null,
          listen: identity.advertise,
          role: 'unconfigured',
          ro: null,
          status: 'unreachable',
          phase: 'unknown',
          vclock: {},
          lag: null,
          pid: null,
          upstreams: [],
          version: null,
          synchro: null,
          roReason: null,
          name: null,
          style: null,
          error: state.error,
        }
      : {
          uuid: state.uuid ?? identity.instanceUuid,
          id: state.id ?? null,
          listen: identity.advertise,
          role: state.role,
          ro: state.ro ?? null,
          status: refused !== null ? 'unsupported' : (state.status ?? state.phase),
          phase: state.phase,
          vclock: state.vclock,
          lag: state.lag ?? null,
          pid: state.pid || null,
          upstreams: state.replication
            .filter((p) => p.upstream !== undefined && p.uuid !== state.uuid)
            .map((p) => ({ uuid: p.uuid, status: p.upstream?.status ?? 'unknown', message: p.upstream?.message ?? null })),
          version: state.version ?? null,
          synchro: state.synchro ? { owner: state.synchro.owner, term: state.synchro.term, len: state.synchro.len } : null,
          roReason: state.ro ? (state.roReason ?? null) : null,
          name: state.name ?? null,
          style: state.style ?? 'lua',
          ...(refused !== null ? { error: refused } : {}),
        };
  return {
    cluster: identity.cluster,
    namespace: identity.namespace,
    pod: identity.pod,
    replicaset: identity.replicaset,
    instance,
    ...cluster,
  };
}
