// Who this instance is (SPEC §4): UUIDv5 identities from common/identity.ts, the address Tarantool
// binds and the address peers are given. A recreated pod derives the same identity, so its data
// directory still matches.
import { instanceUuid, replicasetUuid } from '../../common/identity.js';

export interface InstanceIdentity {
  namespace: string;
  cluster: string;
  pod: string;
  replicaset: string;
  instanceUuid: string;
  replicasetUuid: string;
  /** box.cfg.listen: SHOAL_BIND_HOST:SHOAL_LISTEN_PORT. */
  listen: string;
  /** What peers connect to: POD_IP:SHOAL_LISTEN_PORT. */
  advertise: string;
}

export interface IdentityInput {
  namespace: string;
  cluster: string;
  pod: string;
  replicaset: string;
  bindHost: string;
  podIp: string;
  listenPort: number;
}

export function identityOf(i: IdentityInput): InstanceIdentity {
  return {
    namespace: i.namespace,
    cluster: i.cluster,
    pod: i.pod,
    replicaset: i.replicaset,
    instanceUuid: instanceUuid(i.namespace, i.cluster, i.pod),
    replicasetUuid: replicasetUuid(i.namespace, i.cluster, i.replicaset),
    listen: hostPort(i.bindHost, i.listenPort),
    advertise: hostPort(i.podIp, i.listenPort),
  };
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
