// The agent's configuration, from the environment (SPEC §4). Every problem is reported at once,
// each with what to set, so a broken pod spec is fixed in one round.
//
// | variable                     | default                      | meaning                                              |
// |------------------------------|------------------------------|------------------------------------------------------|
// | POD_NAME, POD_NAMESPACE      | required                     | downward API (metadata.name / metadata.namespace)    |
// | POD_IP                       | required                     | downward API (status.podIP): what peers connect to   |
// | POD_UID                      | unset                        | downward API (metadata.uid): a restarted agent frees |
// |                              |                              | its pod's coordinator Lease at once (agent/lease)    |
// | SHOAL_CLUSTER                | required                     | the shoal.dev/cluster label value (DNS-1123)         |
// | SHOAL_REPLICASET             | POD_NAME without "-<ordinal>"| the StatefulSet name                                 |
// | SHOAL_PORT                   | 8080                         | HTTP endpoints                                       |
// | SHOAL_MESH_PORT              | 8081                         | the mesh (mTLS, wss://<pod IP>:<port>/mesh)          |
// | SHOAL_MESH_CA_URL            | required for the mesh        | the webhook that issues mesh certificates            |
// | SHOAL_MESH_CA_CERT           | required for the mesh        | the mesh CA (PEM) that signs every agent's certificate|
// | SHOAL_MESH_TOKEN_FILE        | /var/run/secrets/shoal.dev/mesh-ca/token | projected token shown to the mesh CA |
// | SHOAL_LISTEN_PORT            | 3301                         | Tarantool iproto                                     |
// | SHOAL_BIND_HOST              | 0.0.0.0                      | bind address of the agent's server and box.cfg.listen|
// | SHOAL_RUN_DIR                | /var/run/shoal               | where shoal.lua is written (shared with Tarantool)   |
// | SHOAL_CONSOLE_SOCKET         | <run dir>/console.sock       | Tarantool's admin console                            |
// | SHOAL_TARANTOOL_LOG          | unset                        | Tarantool's log file, if the agent can read it       |
// | SHOAL_REPLICATION_USER       | shoal_replicator             | user in replication URIs                             |
// | SHOAL_REPLICATION_PASSWORD   | unset (set by the coordinator from the mesh secret) | its password  |
// | SHOAL_LEASE_SECONDS          | 15                           | coordinator Lease duration                           |
// | SHOAL_FAILOVER_TIMEOUT_MS    | 5000                         | master unreachable this long → failover              |
// | SHOAL_PRESTOP_TIMEOUT_MS     | 30000                        | bound of GET /prestop                                |
// | SHOAL_CONSOLE_TIMEOUT_MS     | 10000                        | default bound of one console call                    |
// | SHOAL_STATUS_TIMEOUT_MS      | 2000                         | bound of the console call behind /status, /readyz    |
// | SHOAL_HEARTBEAT_TIMEOUT_MS   | 1000                         | a mesh peer silent this long counts as unreachable   |
// | SHOAL_COORDINATOR_INTERVAL_MS| 300                          | pause between two coordinator rounds                 |
// | SHOAL_CATCHUP_TIMEOUT_MS     | 5000                         | switchover: bound on the candidate catching up       |
// | SHOAL_SWITCHOVER_TIMEOUT_MS  | 30000                        | bound of POST /switchover (answer 504 after it)      |
// Coordination needs Kubernetes: in a pod the service account (in-cluster config), elsewhere KUBECONFIG.
// Self-fencing happens after SHOAL_FAILOVER_TIMEOUT_MS minus a margin derived from the heartbeat
// timeout (agent/decide/timings.ts): with the defaults a cut-off master is read-only after
// 5000 − (1000 heartbeat + 250 heartbeat interval + 250 fence + 100 tick + 10 % slack) = 2900 ms, before any failover can
// fire; a failover timeout too small for that margin is refused.
import { RUN_DIR, DEFAULT_AGENT_PORT, DEFAULT_LISTEN_PORT, DEFAULT_MESH_PORT, MESH_CA_TOKEN_DIR } from '../common/names.js';
import { dns1123LabelProblem } from '../common/dns.js';
import { ShoalError } from '../common/errors.js';
import { DEFAULT_FAILOVER_TIMEOUT_MS } from './decide/timings.js';

export interface AgentTimings {
  leaseSeconds: number;
  failoverTimeoutMs: number;
  prestopTimeoutMs: number;
  consoleTimeoutMs: number;
  statusTimeoutMs: number;
  /** Coordination timings; optional so callers that only run the local agent need not set them. */
  heartbeatTimeoutMs?: number;
  coordinatorIntervalMs?: number;
  catchUpTimeoutMs?: number;
  switchoverTimeoutMs?: number;
}

export interface AgentConfig {
  pod: string;
  namespace: string;
  podIp: string;
  /** Unset: a restarted coordinator's Lease is waited out like anyone else's. */
  podUid?: string;
  cluster: string;
  replicaset: string;
  port: number;
  listenPort: number;
  /** The mesh's mTLS port. */
  meshPort: number;
  /** Where the mesh certificate comes from; unset = this agent cannot join the mesh (the reason is logged). */
  meshCa?: { url: string; caCert: string; tokenFile: string };
  bindHost: string;
  runDir: string;
  consoleSocket: string;
  tarantoolLog?: string;
  replicationUser: string;
  replicationPassword?: string;
  timings: AgentTimings;
}

type Env = Readonly<Record<string, string | undefined>>;

class Problems {
  readonly list: string[] = [];
  add(p: string): void {
    this.list.push(p);
  }
}

function required(env: Env, name: string, how: string, problems: Problems): string {
  const v = env[name]?.trim();
  if (!v) {
    problems.add(`${name} is not set (${how})`);
    return '';
  }
  return v;
}

function int(env: Env, name: string, def: number, min: number, max: number, problems: Problems): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.add(`${name}=${JSON.stringify(raw)} is not an integer between ${min} and ${max}`);
    return def;
  }
  return n;
}

function optionalInt(env: Env, name: string, min: number, max: number, problems: Problems): number | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : int(env, name, min, min, max, problems);
}

/** A StatefulSet pod is named <statefulset>-<ordinal>. */
function statefulSetOf(pod: string): string | undefined {
  const m = /^(.+)-\d+$/.exec(pod);
  return m?.[1];
}

export function parseConfig(env: Env = process.env): AgentConfig {
  const problems = new Problems();
  const pod = required(env, 'POD_NAME', 'downward API: fieldRef metadata.name', problems);
  const namespace = required(env, 'POD_NAMESPACE', 'downward API: fieldRef metadata.namespace', problems);
  const podIp = required(env, 'POD_IP', 'downward API: fieldRef status.podIP', problems);
  const cluster = required(env, 'SHOAL_CLUSTER', 'the value of the shoal.dev/cluster label', problems);
  if (cluster) {
    const p = dns1123LabelProblem(cluster);
    if (p) problems.add(`SHOAL_CLUSTER=${JSON.stringify(cluster)} is not a DNS-1123 label: ${p}`);
  }
  let replicaset = env['SHOAL_REPLICASET']?.trim() || (pod ? statefulSetOf(pod) : undefined) || '';
  if (!replicaset && pod) {
    problems.add(`SHOAL_REPLICASET is not set and POD_NAME=${JSON.stringify(pod)} does not look like <statefulset>-<ordinal>`);
    replicaset = '';
  }
  const port = int(env, 'SHOAL_PORT', DEFAULT_AGENT_PORT, 1, 65535, problems);
  const listenPort = int(env, 'SHOAL_LISTEN_PORT', DEFAULT_LISTEN_PORT, 1, 65535, problems);
  if (port === listenPort) problems.add(`SHOAL_PORT and SHOAL_LISTEN_PORT are both ${port}`);
  const meshPort = int(env, 'SHOAL_MESH_PORT', DEFAULT_MESH_PORT, 1, 65535, problems);
  if (meshPort === port || meshPort === listenPort) problems.add(`SHOAL_MESH_PORT ${meshPort} is also SHOAL_PORT or SHOAL_LISTEN_PORT`);
  const meshCaUrl = env['SHOAL_MESH_CA_URL']?.trim();
  const meshCaCert = env['SHOAL_MESH_CA_CERT']?.trim();
  if (meshCaUrl && !/^https:\/\//.test(meshCaUrl)) problems.add(`SHOAL_MESH_CA_URL=${JSON.stringify(meshCaUrl)} must be an https:// URL`);
  if (meshCaCert && !meshCaCert.includes('BEGIN CERTIFICATE')) problems.add('SHOAL_MESH_CA_CERT is not a PEM certificate');
  const runDir = env['SHOAL_RUN_DIR']?.trim() || RUN_DIR;
  if (!runDir.startsWith('/')) problems.add(`SHOAL_RUN_DIR=${JSON.stringify(runDir)} must be an absolute path`);
  const consoleSocket = env['SHOAL_CONSOLE_SOCKET']?.trim() || `${runDir}/console.sock`;
  if (Buffer.byteLength(consoleSocket) > 107) problems.add(`SHOAL_CONSOLE_SOCKET is longer than a Unix socket path may be (107 bytes)`);
  const replicationUser = env['SHOAL_REPLICATION_USER']?.trim() || 'shoal_replicator';
  const replicationPassword = env['SHOAL_REPLICATION_PASSWORD'] || undefined;
  const timings: AgentTimings = {
    leaseSeconds: int(env, 'SHOAL_LEASE_SECONDS', 15, 1, 3600, problems),
    failoverTimeoutMs: int(env, 'SHOAL_FAILOVER_TIMEOUT_MS', DEFAULT_FAILOVER_TIMEOUT_MS, 100, 3_600_000, problems),
    prestopTimeoutMs: int(env, 'SHOAL_PRESTOP_TIMEOUT_MS', 30_000, 0, 3_600_000, problems),
    consoleTimeoutMs: int(env, 'SHOAL_CONSOLE_TIMEOUT_MS', 10_000, 10, 600_000, problems),
    statusTimeoutMs: int(env, 'SHOAL_STATUS_TIMEOUT_MS', 2_000, 10, 600_000, problems),
    // Unset = the defaults in the table (applied by deriveTimings in agent/decide/timings.ts).
    heartbeatTimeoutMs: optionalInt(env, 'SHOAL_HEARTBEAT_TIMEOUT_MS', 100, 60_000, problems),
    coordinatorIntervalMs: optionalInt(env, 'SHOAL_COORDINATOR_INTERVAL_MS', 10, 60_000, problems),
    catchUpTimeoutMs: optionalInt(env, 'SHOAL_CATCHUP_TIMEOUT_MS', 100, 600_000, problems),
    switchoverTimeoutMs: optionalInt(env, 'SHOAL_SWITCHOVER_TIMEOUT_MS', 1_000, 3_600_000, problems),
  };
  if (problems.list.length > 0) {
    throw new ShoalError(
      `invalid agent configuration:\n  - ${problems.list.join('\n  - ')}`,
      'set these variables in the agent container (the webhook injects them; see agent/config.ts for defaults)',
    );
  }
  return {
    pod,
    namespace,
    podIp,
    podUid: env['POD_UID']?.trim() || undefined,
    cluster,
    replicaset,
    port,
    listenPort,
    meshPort,
    ...(meshCaUrl && meshCaCert
      ? { meshCa: { url: meshCaUrl, caCert: meshCaCert, tokenFile: env['SHOAL_MESH_TOKEN_FILE']?.trim() || `${MESH_CA_TOKEN_DIR}/token` } }
      : {}),
    bindHost: env['SHOAL_BIND_HOST']?.trim() || '0.0.0.0',
    runDir,
    consoleSocket,
    tarantoolLog: env['SHOAL_TARANTOOL_LOG']?.trim() || undefined,
    replicationUser,
    replicationPassword,
    timings,
  };
}
