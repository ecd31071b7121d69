import type { Logger } from '../../common/log.js';

// What a control plane is and how it is asked for; the parts in this folder build it.

export type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';

export interface ControlPlanePorts {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
  controllerManager: number;
  scheduler: number;
}

export interface ControlPlaneOptions {
  /** Everything (PKI, etcd data, logs, kubeconfigs, pid files) lives here. Reusing it keeps PKI and etcd data. */
  runDir: string;
  /** Fixed ports; any left out is picked free so several control planes can run side by side. */
  ports?: Partial<ControlPlanePorts>;
  /** Directory with kube-apiserver, kube-controller-manager, kube-scheduler; default defaultKubernetesBinDir(). */
  binDir?: string;
  logger?: Logger;
  /** Bound on each startup wait (etcd healthy, API server ready, controllers healthy). Default 90 s. */
  startTimeoutMs?: number;
  /** Bound on SIGTERM before SIGKILL when stopping a process. Default 15 s. */
  stopGraceMs?: number;
  /** Aborts startup (everything started so far is stopped). */
  signal?: AbortSignal;
}

export interface ServiceAccountInfo {
  /** Private key the API server signs tokens with and the controller-manager signs legacy tokens with. */
  keyPath: string;
  publicKeyPath: string;
  issuer: string;
}

export interface ControlPlane {
  readonly runDir: string;
  readonly logDir: string;
  /** https://127.0.0.1:<port> */
  readonly apiServerUrl: string;
  readonly etcdUrl: string;
  readonly ports: Readonly<ControlPlanePorts>;
  /** Admin kubeconfig (O=system:masters), usable by kubectl. */
  readonly adminKubeconfigPath: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  /** The API server's serving certificate and key (CA-signed, IP SAN 127.0.0.1): a proxy in front of it can present them. */
  readonly servingCertPath: string;
  readonly servingKeyPath: string;
  readonly serviceAccount: ServiceAccountInfo;
  /** Log file of each process: etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
  readonly logFiles: Readonly<Record<ComponentName, string>>;
  /** The CN of the API server's client certificate for kubelets (what a kubelet lets in). */
  readonly kubeletClientUser: string;
  /** Kubeconfig for a node: CN system:node:<nodeName>, O system:nodes (Node + RBAC authorization). */
  kubeletKubeconfig(nodeName: string): Promise<string>;
  /** Kubeconfig with a client certificate for any user and groups (e.g. for RBAC tests). */
  userKubeconfig(name: string, user: string, groups?: string[]): Promise<string>;
  /** Pids of the processes running now. */
  pids(): Partial<Record<ComponentName, number>>;
  /** Stops the API server only (SIGTERM, SIGKILL after the grace). etcd keeps running. */
  stopApiServer(): Promise<void>;
  /** Starts the API server again, waits for /readyz, and brings back the controllers if they exited. */
  startApiServer(): Promise<void>;
  /** Stops every process this control plane started; idempotent. */
  stop(): Promise<void>;
}
