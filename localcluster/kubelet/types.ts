import type { V1Pod, V1Taint } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import type { ServerAuth } from './server.js';

/** What an image means to the process kubelet: the command a container of it runs by default. */
export interface ImageSpec {
  /** Docker's ENTRYPOINT: replaced by the container's `command`. */
  entrypoint: string[];
  /** Docker's CMD: replaced by the container's `args`. */
  cmd?: string[];
  /** Environment the image sets (the container's env overrides it). */
  env?: Record<string, string>;
  /**
   * Host directories the image brings, shown read-only at their paths in the container (what an
   * image's layers would hold: e.g. a Tarantool build kept under root's cache, which pod uids could
   * not reach at its own path).
   */
  files?: Array<{ source: string; target: string }>;
}

/**
 * Image name → what it runs. A key is a repository or a path prefix of one (`tarantool/tarantool`),
 * optionally with a tag prefix (`tarantool/tarantool:3` matches `:3`, `:3.8`, `:3.8.0`). The longest
 * matching key wins.
 */
export type ImageTable = Record<string, ImageSpec>;

export interface KubeletOptions {
  /** Kubeconfig with the node's identity (user `system:node:<nodeName>`). */
  kubeconfigPath: string;
  nodeName: string;
  /** Per-pod directories, logs and emptyDirs live below it. */
  runDir: string;
  /** First three octets of the pods' loopback IPs, e.g. `127.0.1` → pods get 127.0.1.2 … 127.0.1.254. */
  ipBase: string;
  images: ImageTable;
  /** Extra environment for every container of a pod (the container's own env may refer to it and override it). */
  extraEnv?: (pod: V1Pod, podIP: string) => Record<string, string>;
  /** What in-cluster clients see as KUBERNETES_SERVICE_HOST/PORT. */
  apiServer: { host: string; port: number };
  /**
   * Who may use the kubelet's HTTPS endpoint (logs, exec, port-forward): client certificates signed
   * by `clientCa` whose CN is one of `users` — the API server's --kubelet-client-certificate.
   */
  serverAuth: ServerAuth;
  logger: Logger;
  /** Unix uid of a pod = uidBase + (second octet << 16 | third octet << 8 | fourth octet). Default 200000. */
  uidBase?: number;
  /** Longest wait between restarts of a crashing container (the real kubelet's is 5 min). Default 10 s. */
  maxRestartBackoffMs?: number;
  /** Node Lease renewal period. Default 10 s. */
  leaseRenewMs?: number;
  /** Node status (heartbeat) period. Default 10 s (the kubelet's nodeStatusUpdateFrequency). */
  nodeStatusMs?: number;
  /** Taints the Node is registered with (like the kubelet's --register-with-taints). */
  registerWithTaints?: V1Taint[];
  /** Written (atomically) whenever a pod's processes change: JSON of {@link KubeletState}. */
  stateFile?: string;
}

/** What the kubelet knows about one pod's processes, for tests and the demo's state file. */
export interface PodRuntimeInfo {
  namespace: string;
  name: string;
  podUid: string;
  /** Loopback IP the pod's processes bind; null before one is assigned. */
  ip: string | null;
  /** Unix uid every process of the pod runs as (netfault matches it). */
  unixUid: number | null;
  /** Per-pod directory (emptyDirs, secrets, logs). */
  dir: string;
  /** Container name → pid of its running process (null when not running). */
  pids: Record<string, number | null>;
  /** Container name → its log file (stdout and stderr of every run, appended). */
  logs: Record<string, string>;
  /** Volume name → the host directory shown at its mount paths. */
  volumes: Record<string, string>;
}

export interface KubeletState {
  nodeName: string;
  pods: PodRuntimeInfo[];
}

export interface Kubelet {
  readonly nodeName: string;
  /** The runtime view of a pod bound to this node, if the kubelet has it. */
  podInfo(namespace: string, name: string): PodRuntimeInfo | undefined;
  pods(): PodRuntimeInfo[];
  /** Kills every pod's processes (SIGTERM, then SIGKILL after a short bound), stops heartbeats. Pods stay in the API. */
  stop(): Promise<void>;
}
