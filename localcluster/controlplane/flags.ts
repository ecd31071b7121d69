import type { Pki } from './pki.js';
import type { ControlPlanePorts, ServiceAccountInfo } from './types.js';
import type { RunDirs } from './layout.js';

// The command lines of the four processes. Facts behind the flags: docs/KUBERNETES.md.

export interface FlagInputs {
  ports: ControlPlanePorts;
  etcdUrl: string;
  dirs: RunDirs;
  pki: Pki;
  serviceAccount: ServiceAccountInfo;
  kubeconfigs: { controllerManager: string; scheduler: string };
}

export function etcdFlags({ ports, etcdUrl, dirs }: FlagInputs): string[] {
  const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    '--name=shoal',
    `--data-dir=${dirs.etcd}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=shoal=${peerUrl}`,
    '--initial-cluster-state=new',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

export function apiServerFlags({ ports, etcdUrl, pki, serviceAccount }: FlagInputs): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ports.apiServer}`,
    '--insecure-port=0',
    `--tls-cert-file=${pki.path('apiserver', 'crt')}`,
    `--tls-private-key-file=${pki.path('apiserver', 'key')}`,
    `--client-ca-file=${pki.path('ca', 'crt')}`,
    `--service-account-key-file=${serviceAccount.publicKeyPath}`,
    `--service-account-signing-key-file=${serviceAccount.keyPath}`,
    `--service-account-issuer=${serviceAccount.issuer}`,
    `--api-audiences=${serviceAccount.issuer}`,
    '--service-cluster-ip-range=10.96.0.0/12',
    // Node: kubelets (system:node:<name>) get exactly their own node's rights; RBAC for the rest.
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,DefaultStorageClass,' +
      'DefaultTolerationSeconds,StorageObjectInUseProtection,PersistentVolumeClaimResize,Priority,' +
      'MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota',
    // A 127.0.0.1 endpoint for the `kubernetes` Service fails validation.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    `--requestheader-client-ca-file=${pki.path('front-proxy-ca', 'crt')}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${pki.path('front-proxy-client', 'crt')}`,
    `--proxy-client-key-file=${pki.path('front-proxy-client', 'key')}`,
    // What it shows kubelets (which let only this user in) for logs, exec and port-forward.
    `--kubelet-client-certificate=${pki.path('apiserver-kubelet-client', 'crt')}`,
    `--kubelet-client-key=${pki.path('apiserver-kubelet-client', 'key')}`,
  ];
}

/** What the controller-manager and the scheduler share: one kubeconfig for all three roles, HTTPS health on loopback only. */
function controllerFlags(kubeconfig: string, securePort: number, certDir: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${securePort}`,
    '--port=0',
    `--cert-dir=${certDir}`,
  ];
}

export function controllerManagerFlags({ ports, dirs, pki, serviceAccount, kubeconfigs }: FlagInputs): string[] {
  const caCertPath = pki.path('ca', 'crt');
  return [
    ...controllerFlags(kubeconfigs.controllerManager, ports.controllerManager, dirs.cmCerts),
    // Default is /usr/libexec/kubernetes/…, which it would create.
    `--flex-volume-plugin-dir=${dirs.flexVolume}`,
    `--client-ca-file=${caCertPath}`,
    `--requestheader-client-ca-file=${pki.path('front-proxy-ca', 'crt')}`,
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${serviceAccount.keyPath}`,
    `--root-ca-file=${caCertPath}`,
    `--cluster-signing-cert-file=${caCertPath}`,
    `--cluster-signing-key-file=${pki.path('ca', 'key')}`,
    '--leader-elect=true',
  ];
}

export function schedulerFlags({ ports, dirs, kubeconfigs }: FlagInputs): string[] {
  return [...controllerFlags(kubeconfigs.scheduler, ports.scheduler, dirs.schedCerts), '--leader-elect=true'];
}
