import { accessSync, constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ShoalError } from '../../common/errors.js';

// Where the control plane's binaries are: built once by scripts/provision-kubernetes.sh into the
// cache, etcd from Debian on PATH.

export const KUBERNETES_VERSION = 'v1.20.2';
const PROVISION_HINT = 'run scripts/provision-kubernetes.sh (it builds them once, ~5 min)';

/** Where scripts/provision-kubernetes.sh puts the binaries. */
export function defaultKubernetesBinDir(): string {
  const cache = process.env.SHOAL_CACHE_DIR || join(homedir(), '.cache', 'shoal');
  return join(cache, `kubernetes-${KUBERNETES_VERSION}`, 'bin');
}

/** Debian's kubectl of the control plane's version (kubernetes-client), unpacked by scripts/provision-kubernetes.sh whatever kubectl is on PATH. */
export function debianKubectlPath(): string {
  const cache = process.env.SHOAL_CACHE_DIR || join(homedir(), '.cache', 'shoal');
  return join(cache, `kubectl-${KUBERNETES_VERSION}`, 'usr', 'bin', 'kubectl');
}

export interface KubernetesBinaries {
  etcd: string;
  kubeApiServer: string;
  kubeControllerManager: string;
  kubeScheduler: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An executable's path on this process's PATH. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Finds the control-plane binaries (etcd from PATH) or throws a ShoalError that says how to get them. */
export function locateKubernetesBinaries(binDir: string = defaultKubernetesBinDir()): KubernetesBinaries {
  const inBin = (name: string): string => {
    const path = join(binDir, name);
    if (!isExecutable(path)) {
      throw new ShoalError(`Kubernetes ${KUBERNETES_VERSION} binary ${name} not found at ${path}`, PROVISION_HINT);
    }
    return path;
  };
  const etcd = onPath('etcd') ?? (isExecutable('/usr/bin/etcd') ? '/usr/bin/etcd' : undefined);
  if (!etcd) throw new ShoalError('etcd not found on PATH', 'run scripts/provision-kubernetes.sh (installs Debian etcd-server)');
  return {
    etcd,
    kubeApiServer: inBin('kube-apiserver'),
    kubeControllerManager: inBin('kube-controller-manager'),
    kubeScheduler: inBin('kube-scheduler'),
  };
}
