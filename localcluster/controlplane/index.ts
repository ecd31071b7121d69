// A real Kubernetes v1.20.2 control plane on 127.0.0.1: etcd + kube-apiserver +
// kube-controller-manager + kube-scheduler as child processes, with a PKI made by openssl.
// Facts behind the flags: docs/KUBERNETES.md. Binaries: scripts/provision-kubernetes.sh.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { locateKubernetesBinaries } from './binaries.js';
import type { TlsMaterial } from './health.js';
import { kubeconfigPathIn, Kubeconfigs } from './kubeconfig.js';
import { makeRunDirs } from './layout.js';
import { APISERVER_KUBELET_CLIENT, ensureClusterPki, serviceAccountOf } from './pki.js';
import { reapStale } from './processes.js';
import { withFreePorts } from './ports.js';
import { applyNodeRbac } from './rbac.js';
import { ControlPlaneProcesses } from './supervisor.js';
import type { ControlPlane, ControlPlaneOptions, ControlPlanePorts } from './types.js';

export { KUBERNETES_VERSION, debianKubectlPath, defaultKubernetesBinDir, locateKubernetesBinaries, type KubernetesBinaries } from './binaries.js';
export { APISERVER_KUBELET_CLIENT } from './pki.js';
export type { ComponentName, ControlPlane, ControlPlaneOptions, ControlPlanePorts, ServiceAccountInfo } from './types.js';

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger ?? createLogger({ component: 'controlplane' });
  const bins = locateKubernetesBinaries(opts.binDir);
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const stopGraceMs = opts.stopGraceMs ?? 15_000;
  const signal = opts.signal;
  const t0 = Date.now();

  const runDir = resolve(opts.runDir);
  const dirs = await makeRunDirs(runDir);
  await reapStale(dirs.pids, runDir, log);
  const pki = await ensureClusterPki(dirs.pki, dirs.nodePki);
  const caCertPath = pki.path('ca', 'crt');
  const serviceAccount = serviceAccountOf(pki);
  const adminTls: TlsMaterial = {
    ca: await readFile(caCertPath, 'utf8'),
    cert: await readFile(pki.path('admin', 'crt'), 'utf8'),
    key: await readFile(pki.path('admin', 'key'), 'utf8'),
  };
  const adminKubeconfigPath = kubeconfigPathIn(dirs.kubeconfig)('admin');

  // Starts the processes on the given ports; everything before is port independent.
  const launch = async (ports: ControlPlanePorts): Promise<ControlPlane> => {
    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const apiServerUrl = `https://127.0.0.1:${ports.apiServer}`;
    const kubeconfigs = new Kubeconfigs(dirs.kubeconfig, pki, apiServerUrl);
    const { controllerManager, scheduler } = await kubeconfigs.writeComponents();
    const processes = new ControlPlaneProcesses({
      bins,
      flags: { ports, etcdUrl, dirs, pki, serviceAccount, kubeconfigs: { controllerManager, scheduler } },
      logDir: dirs.logs,
      pidDir: dirs.pids,
      apiServerUrl,
      adminTls,
      startTimeoutMs,
      stopGraceMs,
      signal,
      log,
    });
    try {
      await processes.startEtcd();
      await processes.startApiServer();
      await applyNodeRbac(adminKubeconfigPath);
      await processes.startControllers();
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'control plane start failed; stopping what was started');
      await processes.stop().catch((stopErr: unknown) => log.error({ err: errorMessage(stopErr) }, 'cleanup after failed start'));
      throw err;
    }
    log.info({ apiServerUrl, ms: Date.now() - t0, runDir }, 'control plane ready');

    return {
      runDir,
      logDir: dirs.logs,
      apiServerUrl,
      etcdUrl,
      ports,
      adminKubeconfigPath,
      caCertPath,
      caKeyPath: pki.path('ca', 'key'),
      servingCertPath: pki.path('apiserver', 'crt'),
      servingKeyPath: pki.path('apiserver', 'key'),
      kubeletClientUser: APISERVER_KUBELET_CLIENT,
      serviceAccount,
      logFiles: processes.logFiles,
      userKubeconfig: (name, user, groups) => kubeconfigs.user(name, user, groups),
      kubeletKubeconfig: (nodeName) => kubeconfigs.kubelet(nodeName),
      pids: () => processes.pids(),
      stopApiServer: () => processes.stopApiServer(),
      startApiServer: () => processes.restartApiServer(),
      stop: () => processes.stop(),
    };
  };

  return withFreePorts(opts.ports ?? {}, launch, log, signal);
}
