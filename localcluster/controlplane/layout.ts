import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

// The run directory's layout: what lives where, made on start.

export interface RunDirs {
  pki: string;
  /** Certificates issued for kubeconfigs on request (nodes, test users). */
  nodePki: string;
  kubeconfig: string;
  logs: string;
  pids: string;
  etcd: string;
  cmCerts: string;
  flexVolume: string;
  schedCerts: string;
}

export function runDirs(runDir: string): RunDirs {
  return {
    pki: join(runDir, 'pki'),
    nodePki: join(runDir, 'pki', 'users'),
    kubeconfig: join(runDir, 'kubeconfig'),
    logs: join(runDir, 'logs'),
    pids: join(runDir, 'pids'),
    etcd: join(runDir, 'etcd'),
    cmCerts: join(runDir, 'controller-manager', 'certs'),
    flexVolume: join(runDir, 'controller-manager', 'flexvolume'),
    schedCerts: join(runDir, 'scheduler', 'certs'),
  };
}

/** Creates every directory of the layout. */
export async function makeRunDirs(runDir: string): Promise<RunDirs> {
  const dirs = runDirs(runDir);
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  await chmod(dirs.etcd, 0o700); // etcd refuses a data dir others can read
  return dirs;
}
