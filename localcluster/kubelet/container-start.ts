import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { spawnContainer, type ContainerProcess } from './process.js';
import type { Launch } from './launch.js';

// Starting one planned container: its subPath directories, then its process in the pod's mount
// namespace, as the pod's uid.

export interface StartInputs {
  launch: Launch;
  uid: number;
  logPath: string;
  hostname: string;
}

export function startContainerProcess({ launch, uid, logPath, hostname }: StartInputs): ContainerProcess {
  for (const dir of launch.subPathDirs) {
    // subPath directories are created (owned by the pod) when missing, as the kubelet does.
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      chownSync(dir, uid, uid);
    }
  }
  return spawnContainer({
    argv: launch.argv,
    env: launch.env,
    workingDir: launch.workingDir,
    mounts: launch.mounts,
    uid,
    gid: uid,
    logPath,
    hostname,
  });
}
