import type { V1ConfigMap, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { unlink } from 'node:fs/promises';
import net from 'node:net';
import { ConsoleClient } from '../agent/console/client.js';
import { defaultLane, tarantoolImage, type TarantoolLane } from '../demo/tarantool-binaries.js';
import { CLUSTER_LABEL } from '../common/names.js';
import type { AgentStatus } from '../common/status.js';
import { agentRbacObjects, applyObjects } from '../demo/local-install.js';
import { condition, podRuntime, waitFor, type KubeClients, type WaitOptions } from './kube.js';
import type { WriteTarget } from './workload.js';

// Deploying and inspecting Shoal-managed replica sets on the shared e2e cluster: what a user does
// (a ConfigMap with init.lua, a headless Service, a labelled StatefulSet), and where a test finds
// each instance's agent and console.

/**
 * The is_sync space `load`, created by whichever instance is writable, in a fiber that waits for it
 * and retries: the master can be read-only for a moment right after its start (orphan while the
 * agent sets its replication), and DDL run straight from the init script then fails and kills the
 * process, after which a read-only restart never creates the index (a 30-minute chaos run wrote
 * nothing: `load` had no index). `_space:update`, not `space:alter`, which 2.6.0 lacks.
 */
const LOAD_SPACE_LUA = `require('fiber').create(function()
  while true do
    box.ctl.wait_rw()
    local ok, err = pcall(function()
      box.schema.space.create('load', {if_not_exists = true})
      box.space.load:create_index('pk', {if_not_exists = true, parts = {1, 'unsigned'}})
      if not box.space.load.is_sync then box.space._space:update({box.space.load.id}, {{'=', 6, {is_sync = true}}}) end
    end)
    if ok then return end
    require('log').warn('test app: creating space load failed (%s); retrying', tostring(err))
    require('fiber').sleep(0.2)
  end
end)`;

/** The test application: `require('shoal').cfg` plus an is_sync space `load` (unsigned keys) for write loads. */
export function testAppLua(memtxMemoryMB = 32): string {
  return `
require('shoal').cfg{ work_dir = '/var/lib/tarantool', memtx_memory = ${memtxMemoryMB} * 1024 * 1024 }
${LOAD_SPACE_LUA}
`;
}

export const TEST_APP_LUA = testAppLua();

/** The same application in Tarantool 3's own style (SPEC §4a): a config without topology and an app file. */
export function testNativeConfig(memtxMemoryMB = 32): string {
  return `credentials:
  users:
    guest:
      roles: [super]
memtx:
  memory: ${memtxMemoryMB * 1024 * 1024}
process:
  work_dir: /var/lib/tarantool   # relative paths (the pid file, …) land on the volume
snapshot:
  dir: /var/lib/tarantool
wal:
  dir: /var/lib/tarantool
vinyl:
  dir: /var/lib/tarantool
app:
  file: /opt/app/app.lua
`;
}
export const TEST_NATIVE_APP_LUA = `
${LOAD_SPACE_LUA}
`;

export interface ReplicaSetSpec {
  namespace: string;
  cluster: string;
  /** The StatefulSet (= replica set) name. */
  name: string;
  replicas: number;
  /** Extra env of the Tarantool container (changing it is a template change). */
  env?: Record<string, string>;
  /** Which Tarantool the pods run (its image tag). Default: defaultLane() — 3 unless SHOAL_TARANTOOL_LANE says otherwise. */
  lane?: TarantoolLane;
  /**
   * memtx_memory of the test application. Default 32 MB. Unpaced write loads need more (about
   * 50 bytes a row: a 30-minute chaos run writes a few million rows); a cap, not an allocation.
   */
  memtxMemoryMB?: number;
  annotations?: Record<string, string>;
  /** How the application starts: `lua` (init.lua, default) or `native` (a Tarantool 3 config; lane 3 only). */
  style?: 'lua' | 'native';
}

export function statefulSet(s: ReplicaSetSpec): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: s.name, namespace: s.namespace, labels: { [CLUSTER_LABEL]: s.cluster }, annotations: s.annotations ?? {} },
    spec: {
      serviceName: s.name,
      replicas: s.replicas,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: s.name } },
      template: {
        metadata: { labels: { app: s.name } },
        spec: {
          serviceAccountName: 'shoal-agent',
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'tarantool',
              image: tarantoolImage(s.lane ?? defaultLane()),
              command: s.style === 'native' ? ['tarantool'] : ['tarantool', '/opt/app/init.lua'],
              env: [
                ...(s.style === 'native' ? [{ name: 'TT_CONFIG', value: '/opt/app/config.yaml' }] : []),
                ...Object.entries(s.env ?? {}).map(([name, value]) => ({ name, value })),
              ],
              volumeMounts: [
                { name: 'data', mountPath: '/var/lib/tarantool' },
                { name: 'app', mountPath: '/opt/app' },
              ],
            },
          ],
          volumes: [{ name: 'app', configMap: { name: `${s.name}-app` } }],
        },
      },
      volumeClaimTemplates: [
        { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
      ],
    },
  };
}

/** Creates what a user applies for one replica set (and the agents' RBAC in the namespace). */
export async function deployReplicaSet(k: KubeClients, s: ReplicaSetSpec): Promise<void> {
  await applyObjects(k.client, agentRbacObjects(s.namespace));
  const data: Record<string, string> = s.style === 'native' ? { 'config.yaml': testNativeConfig(s.memtxMemoryMB), 'app.lua': TEST_NATIVE_APP_LUA } : { 'init.lua': testAppLua(s.memtxMemoryMB) };
  const app: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${s.name}-app`, namespace: s.namespace }, data };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace },
    spec: { clusterIP: 'None', selector: { app: s.name }, ports: [{ name: 'iproto', port: 3301 }] },
  };
  await applyObjects(k.client, [app, service]);
  await k.in(s.namespace).statefulSets.create(statefulSet(s));
}

/** An agent's /status, or null when it does not answer. */
export async function agentStatus(ip: string | null | undefined, timeoutMs = 2000): Promise<AgentStatus | null> {
  if (!ip) return null;
  try {
    const res = await fetch(`http://${ip}:8080/status`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as AgentStatus) : null;
  } catch {
    return null;
  }
}

export interface LiveInstance {
  pod: string;
  ip: string;
  status: AgentStatus;
}

/** Statuses of the running pods of a replica set (those whose agent answers). */
export async function instancesOf(k: KubeClients, namespace: string, replicaset: string): Promise<LiveInstance[]> {
  const pods = await k.in(namespace).pods.list({ labelSelector: `app=${replicaset}` });
  const out: LiveInstance[] = [];
  for (const pod of pods.items) {
    const ip = pod.status?.podIP;
    if (!ip || pod.metadata?.deletionTimestamp) continue;
    const status = await agentStatus(ip);
    if (status) out.push({ pod: pod.metadata?.name ?? '', ip, status });
  }
  return out.sort((a, b) => a.pod.localeCompare(b.pod));
}

/**
 * Waits until the replica set has `replicas` Ready pods, exactly one of them reports itself master,
 * the others replicas, and every agent's /status names that master. Returns the master's pod name.
 */
export async function waitForReplicaSet(k: KubeClients, namespace: string, replicaset: string, replicas: number, opts: WaitOptions): Promise<string> {
  return waitFor(
    `replica set ${namespace}/${replicaset}: ${replicas} Ready pods, one master agreed by all`,
    async () => {
      const pods = await k.in(namespace).pods.list({ labelSelector: `app=${replicaset}` });
      const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
      if (live.length !== replicas || !live.every((p) => condition(p, 'Ready') === 'True')) return undefined;
      const inst = await instancesOf(k, namespace, replicaset);
      if (inst.length !== replicas) return undefined;
      const masters = inst.filter((i) => i.status.instance.role === 'master');
      if (masters.length !== 1 || inst.some((i) => i.status.instance.role !== 'master' && i.status.instance.role !== 'replica')) return undefined;
      const master = masters[0]!.pod;
      const agreed = inst.every((i) => i.status.replicasets.find((r) => r.name === replicaset)?.master === master);
      return agreed ? master : undefined;
    },
    { intervalMs: 500, ...opts },
  );
}

/** Each running pod's Tarantool version as its agent reports it (/status instance.version; null when the agent does not know it yet). */
export async function tarantoolVersions(k: KubeClients, namespace: string, replicaset: string): Promise<Record<string, string | null>> {
  const inst = await instancesOf(k, namespace, replicaset);
  return Object.fromEntries(inst.map((i) => [i.pod, i.status.instance.version ?? null]));
}

/** The host path of a pod's Tarantool console (through the kubelet's view of its shoal-run volume). */
export function consoleOf(stateFile: string, namespace: string, pod: string): string | undefined {
  const dir = podRuntime(stateFile, namespace, pod)?.hostPathOf('shoal-run');
  return dir ? `${dir}/console.sock` : undefined;
}

/** A write-load target that follows the master the agents report. */
export function masterTarget(k: KubeClients, stateFile: string, namespace: string, replicaset: string): () => Promise<WriteTarget | null> {
  return async () => {
    const inst = await instancesOf(k, namespace, replicaset);
    const master = inst.find((i) => i.status.instance.role === 'master' && i.status.instance.ro === false);
    const console = master ? consoleOf(stateFile, namespace, master.pod) : undefined;
    return master && console ? { name: master.pod, console } : null;
  };
}

/** The replica set's pods the kubelet runs (`<name>-0` … `<name>-<replicas-1>`), read from its state file: works while the API server is down. */
export function localPods(stateFile: string, namespace: string, replicaset: string, replicas: number): { pod: string; ip: string; console: string }[] {
  const out: { pod: string; ip: string; console: string }[] = [];
  for (let i = 0; i < replicas; i++) {
    const pod = `${replicaset}-${i}`;
    const info = podRuntime(stateFile, namespace, pod);
    const dir = info?.hostPathOf('shoal-run');
    if (info?.ip && dir) out.push({ pod, ip: info.ip, console: `${dir}/console.sock` });
  }
  return out;
}

/** Like masterTarget, but finds the pods through the kubelet's state file, not the API server (for API-server faults). */
export function localMasterTarget(stateFile: string, namespace: string, replicaset: string, replicas: number): () => Promise<WriteTarget | null> {
  return async () => {
    const pods = localPods(stateFile, namespace, replicaset, replicas);
    const statuses = await Promise.all(pods.map(async (p) => ({ p, s: await agentStatus(p.ip, 1000) })));
    const master = statuses.find(({ s }) => s?.instance.role === 'master' && s.instance.ro === false);
    return master ? { name: master.p.pod, console: master.p.console } : null;
  };
}

/** Runs Lua on a pod's Tarantool through its admin console (found through the kubelet's state file). */
export async function consoleEval(stateFile: string, namespace: string, pod: string, lua: string, args: Array<string | number | boolean | null> = [], timeoutMs = 15_000): Promise<unknown> {
  const socketPath = consoleOf(stateFile, namespace, pod);
  if (!socketPath) throw new Error(`no console for ${namespace}/${pod} (is the pod running?)`);
  const client = new ConsoleClient({ socketPath, timeoutMs, connectAttemptMs: 2_000 });
  try {
    return await client.eval(lua, args, { failFast: true });
  } finally {
    await client.close();
  }
}

/**
 * Keeps a pod's Tarantool from coming back until released: a listener squats its console socket
 * path, so each restart by the kubelet exits at once ("Address already in use": a crash loop) and
 * the console answers nothing. Without it the kubelet restarts a killed Tarantool within about a
 * second, and the coordinator rightly makes the same instance writable again after a vclock check
 * (SPEC §5: failover is for a master silent for SHOAL_FAILOVER_TIMEOUT_MS), so no failover happens.
 * Call it before the kill: the live Tarantool keeps listening on the unlinked old socket.
 */
export async function holdConsole(path: string): Promise<() => Promise<void>> {
  await unlink(path).catch(() => undefined);
  // Accept and hang up at once: to the agent (and the restarted Tarantool's liveness check) this is
  // a dead console answering nothing, noticed immediately as with a process that is simply gone.
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The pod's processes run under their own uid: they must be able to connect (and find it live).
    server.listen({ path, readableAll: true, writableAll: true }, () => resolve());
  });
  let released = false;
  return async (): Promise<void> => {
    if (released) return;
    released = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(path).catch(() => undefined);
  };
}
