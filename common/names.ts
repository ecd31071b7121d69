// The fixed names of SPEC.md: labels, annotations, object names, paths and ports that the webhook,
// the agent, the manifests and the tests must agree on. Change them only together with SPEC.md.

export const CLUSTER_LABEL = 'shoal.dev/cluster';

export const ANNOTATIONS = {
  failover: 'shoal.dev/failover',
  tarantoolContainer: 'shoal.dev/tarantool-container',
  paused: 'shoal.dev/paused',
  /** `storage` | `router`: the StatefulSet's role in a sharded cluster when its Tarantool config names none (SPEC §4b). */
  shardingRole: 'shoal.dev/sharding-role',
  updateStrategy: 'shoal.dev/update-strategy',
  injected: 'shoal.dev/injected',
  /** On the coordinator Lease: the holder's pod UID (a restarted agent recognises its own pod's lease). */
  holderUid: 'shoal.dev/holder-uid',
} as const;

export const AGENT_CONTAINER = 'shoal-agent';
/** Init container (agent image, `install-lua`) that writes shoal.lua before Tarantool starts. */
export const INSTALL_CONTAINER = 'shoal-install';
export const RUN_VOLUME = 'shoal-run';
export const RUN_DIR = '/var/run/shoal';
export const CONSOLE_SOCKET = `${RUN_DIR}/console.sock`;
/** Where a pod's ServiceAccount credentials (token, ca.crt, namespace) are mounted: Kubernetes' path. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The projected volume with the agent's ServiceAccount token; mounted in the agent container only. */
export const API_ACCESS_VOLUME = 'shoal-api-access';

/** The projected volume with the agent's mesh-CA token (audience MESH_CA_AUDIENCE); agent container only. */
export const MESH_CA_VOLUME = 'shoal-mesh-ca';
/** Where that volume is mounted in the agent; the token is the file `token`. */
export const MESH_CA_TOKEN_DIR = '/var/run/secrets/shoal.dev/mesh-ca';
/** The audience of the token an agent shows the webhook to get its mesh certificate; nobody else accepts it. */
export const MESH_CA_AUDIENCE = 'shoal.dev/mesh-ca';
/** The webhook's endpoint that issues mesh certificates (SPEC §2). */
export const MESH_CERTIFICATE_PATH = '/mesh/certificate';

export const DEFAULT_AGENT_PORT = 8080;
/** The agent's mTLS port for the mesh (SPEC §4). */
export const DEFAULT_MESH_PORT = 8081;
export const DEFAULT_LISTEN_PORT = 3301;
export const DEFAULT_WEBHOOK_PORT = 8443;

/** The Lease whose holder is the cluster's coordinator. */
export const leaseName = (cluster: string): string => `shoal-${cluster}`;
/** The ConfigMap with state that must outlive a coordinator (term, masters, members, expelled). */
export const stateConfigMapName = (cluster: string): string => `shoal-${cluster}-state`;
/** The Secret whose `token` the Tarantool replication password is derived from (it authenticates no mesh link). */
export const meshSecretName = (cluster: string): string => `shoal-${cluster}-mesh`;
export const MESH_TOKEN_KEY = 'token';

/** Kubernetes' pod label with the revision of the StatefulSet template a pod was created from. */
export const REVISION_LABEL = 'controller-revision-hash';
