import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { ShoalError, errorMessage } from '../common/errors.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { nodes } from '../common/kube/resources.js';
import { startApiFaultProxy, type ApiFaultProxy } from './api-fault-proxy.js';
import { startControlPlane, type ControlPlane } from './controlplane/index.js';
import { startKubelet, type ImageTable, type Kubelet, type KubeletOptions, type KubeletState, type PodRuntimeInfo } from './kubelet/index.js';
import { ipBaseTaken } from './kubelet/ipbase-lock.js';
import { sleep } from '../common/time.js';
import { createNetFault, type NetFault, type NetFaultShape } from './netfault.js';
import { startProvisioner, type Provisioner } from './provisioner.js';

// The local cluster: a real control plane, the process kubelet on one node, the local volume
// provisioner (with the default StorageClass) and the network-fault helper, started and stopped
// as one.

export interface LocalClusterOptions {
  /** Control plane data, pod directories, volumes and logs live here. */
  runDir: string;
  /** Names the node (`<name>-node`) and the netfault chains; default `shoal`. */
  name?: string;
  /** Pods get `<ipBase>.2`, `.3`, …; give two clusters on one machine different bases. Default `127.0.1`. */
  ipBase?: string;
  /** Added to (and overriding) the host images (`hostImages`): what each image runs. */
  images?: ImageTable;
  /** Extra environment for every container (the kubelet's `extraEnv`). */
  extraEnv?: KubeletOptions['extraEnv'];
  /** One logger for every part; without it each part logs JSON with its own component name… */
  logger?: Logger;
  /** …to this file instead of stdout. */
  logFile?: string;
  /** Aborts the start (what was started is stopped). */
  signal?: AbortSignal;
  /**
   * Pods reach the API server through a fault-injecting proxy (api-fault-proxy.ts); the kubelet,
   * the provisioner and the admin kubeconfig still talk to the API server directly. Default off.
   */
  apiFaultProxy?: boolean;
}

/** A pod's runtime facts with the two lookups tests use most. */
export interface LocalPodInfo extends PodRuntimeInfo {
  /** The host directory shown at the volume's mount paths. */
  hostPathOf(volumeName: string): string | undefined;
  logPath(container: string): string | undefined;
}

export interface LocalCluster {
  readonly name: string;
  readonly runDir: string;
  /** Admin kubeconfig (usable with kubectl). */
  readonly kubeconfig: string;
  readonly apiServerUrl: string;
  readonly nodeName: string;
  readonly controlPlane: ControlPlane;
  readonly kubelet: Kubelet;
  readonly netfault: NetFault;
  /** The proxy between the pods and the API server, when started with `apiFaultProxy`. */
  readonly apiFaultProxy: ApiFaultProxy | undefined;
  /** JSON `KubeletState`, rewritten whenever a pod's processes change (readable from other processes). */
  readonly stateFile: string;
  podInfo(namespace: string, name: string): LocalPodInfo | undefined;
  /** Cuts a pod off the network (both ways unless `shape` says otherwise) until `heal` with the same shape. */
  cutOff(namespace: string, name: string, shape?: NetFaultShape): Promise<void>;
  heal(namespace: string, name: string, shape?: NetFaultShape): Promise<void>;
  /** Stops the kubelet (no pod process is left), the provisioner and the control plane; heals every fault. */
  stop(): Promise<void>;
}

/** The host's own node and shell as images, for small workloads; callers add theirs (`images`). */
export function hostImages(): ImageTable {
  return {
    node: { entrypoint: [process.execPath] },
    busybox: { entrypoint: [], cmd: ['sh'] },
  };
}

export function withLookups(info: PodRuntimeInfo): LocalPodInfo {
  return { ...info, hostPathOf: (v) => info.volumes[v], logPath: (c) => info.logs[c] };
}

/** A pod's info from a kubelet state file (for processes other than the one running the cluster). */
export function readPodInfo(stateFile: string, namespace: string, name: string): LocalPodInfo | undefined {
  if (!existsSync(stateFile)) return undefined;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as KubeletState;
  const info = state.pods.find((p) => p.namespace === namespace && p.name === name);
  return info ? withLookups(info) : undefined;
}

/** Waits until the node is Ready and the lifecycle controller removed its not-ready taint (~6 s). */
async function waitNodeSchedulable(kubeconfig: string, nodeName: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const client = new KubeClient(loadKubeConfig({ kubeconfig }));
  const deadline = Date.now() + timeoutMs;
  let last = 'not registered yet';
  try {
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      try {
        const node = await nodes(client).get(nodeName, signal ? { signal } : {});
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        const taints = (node.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
        if (ready && taints.length === 0) return;
        last = ready ? `taints ${taints.map((t) => t.key).join(', ')}` : 'not Ready';
      } catch (err) {
        last = errorMessage(err);
      }
      await sleep(250, signal).catch(() => undefined);
    }
  } finally {
    client.close();
  }
  throw new ShoalError(`node ${nodeName} did not become schedulable in ${timeoutMs / 1000} s (${last})`);
}

export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const name = opts.name ?? 'shoal';
  const runDir = path.resolve(opts.runDir);
  const nodeName = `${name}-node`;
  const ipBase = opts.ipBase ?? '127.0.1';
  const logOf = (component: 'kubelet' | 'controlplane'): Logger => opts.logger ?? createLogger({ component }, undefined, opts.logFile);
  // Fail before the control plane's seconds of start-up (the kubelet's lock is the real guard).
  if (ipBaseTaken(ipBase)) {
    throw new ShoalError(`pod IP base ${ipBase} is in use by another local cluster on this machine`, 'pass another ipBase (e.g. 127.0.2)');
  }
  await mkdir(runDir, { recursive: true });
  const netfault = createNetFault(`SHOAL-NF-${name}`.slice(0, 24));
  const stateFile = path.join(runDir, 'kubelet-state.json');

  const controlPlane = await startControlPlane({
    runDir: path.join(runDir, 'controlplane'),
    logger: logOf('controlplane'),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let kubelet: Kubelet | undefined;
  let provisioner: Provisioner | undefined;
  let proxy: ApiFaultProxy | undefined;
  const stopAll = async (): Promise<void> => {
    const errors: string[] = [];
    const attempt = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (err) {
        errors.push(`${what}: ${errorMessage(err)}`);
      }
    };
    if (kubelet) await attempt('kubelet', kubelet.stop);
    if (provisioner) await attempt('provisioner', provisioner.stop);
    if (proxy) await attempt('API fault proxy', proxy.close);
    await attempt('control plane', controlPlane.stop);
    await attempt('netfault', netfault.healAll);
    if (errors.length) throw new ShoalError(`local cluster did not stop cleanly: ${errors.join('; ')}`);
  };

  try {
    if (opts.apiFaultProxy) {
      proxy = await startApiFaultProxy({
        upstream: controlPlane.apiServerUrl,
        ca: await readFile(controlPlane.caCertPath),
        cert: await readFile(controlPlane.servingCertPath),
        key: await readFile(controlPlane.servingKeyPath),
      });
    }
    // What pods see as KUBERNETES_SERVICE_HOST/PORT.
    const api = new URL(proxy?.url ?? controlPlane.apiServerUrl);
    kubelet = await startKubelet({
      kubeconfigPath: await controlPlane.kubeletKubeconfig(nodeName),
      nodeName,
      runDir: path.join(runDir, 'kubelet'),
      ipBase,
      images: { ...hostImages(), ...opts.images },
      ...(opts.extraEnv ? { extraEnv: opts.extraEnv } : {}),
      apiServer: { host: api.hostname, port: Number(api.port) },
      serverAuth: { clientCa: await readFile(controlPlane.caCertPath), users: [controlPlane.kubeletClientUser] },
      logger: logOf('kubelet'),
      stateFile,
    });
    provisioner = await startProvisioner({
      kubeconfigPath: controlPlane.adminKubeconfigPath,
      nodeName,
      volumesDir: path.join(runDir, 'volumes'),
      logger: logOf('kubelet'),
    });
    await waitNodeSchedulable(controlPlane.adminKubeconfigPath, nodeName, 60_000, opts.signal);
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }

  const started = kubelet;
  const target = (namespace: string, pod: string): { ip: string; unixUid: number } => {
    const info = started.podInfo(namespace, pod);
    if (!info?.ip || info.unixUid === null) throw new ShoalError(`pod ${namespace}/${pod} is not running on ${nodeName}`);
    return { ip: info.ip, unixUid: info.unixUid };
  };
  let stopping: Promise<void> | undefined;
  return {
    name,
    runDir,
    kubeconfig: controlPlane.adminKubeconfigPath,
    apiServerUrl: controlPlane.apiServerUrl,
    nodeName,
    controlPlane,
    kubelet: started,
    netfault,
    apiFaultProxy: proxy,
    stateFile,
    podInfo: (namespace, pod) => {
      const info = started.podInfo(namespace, pod);
      return info ? withLookups(info) : undefined;
    },
    cutOff: (namespace, pod, shape) => netfault.cutOff(target(namespace, pod), shape),
    heal: (namespace, pod, shape) => netfault.heal(target(namespace, pod), shape),
    stop: () => (stopping ??= stopAll()),
  };
}
