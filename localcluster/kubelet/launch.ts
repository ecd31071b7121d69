import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { expandVars, resolveEnv, type ObjectData, type PodFacts } from './env.js';
import { containerArgv, lookupImage } from './image.js';
import type { BindMount } from './process.js';
import type { ImageTable } from './types.js';

// Everything a container start needs, decided from the pod, its objects and its volumes (pure).

export interface Launch {
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
  mounts: BindMount[];
  /** subPath directories that must exist on the host before the mount. */
  subPathDirs: string[];
}

export type LaunchResult = { ok: true; launch: Launch } | { ok: false; reason: string; message: string };

/** What every process gets from the "runtime" before the image and the pod say more. */
export function runtimeEnv(hostname: string): Record<string, string> {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/', HOSTNAME: hostname };
}

export interface LaunchInput {
  container: V1Container;
  facts: PodFacts;
  objects: ObjectData;
  /** Volume name → host directory. */
  volumes: Record<string, string>;
  images: ImageTable;
  /** Service variables and the cluster's extras. */
  baseEnv: Record<string, string>;
  hostname: string;
}

export function planLaunch(input: LaunchInput): LaunchResult {
  const { container } = input;
  const image = lookupImage(input.images, container.image ?? '');
  if (!image) {
    return {
      ok: false,
      reason: 'ErrImagePull',
      message: `image "${container.image ?? ''}" is not in the process kubelet's image table (known: ${Object.keys(input.images).join(', ')})`,
    };
  }
  const env = resolveEnv(container, input.facts, input.objects, input.baseEnv, { ...runtimeEnv(input.hostname), ...image.env });
  if (!env.ok) return { ok: false, reason: 'CreateContainerConfigError', message: env.message };

  const mounts: BindMount[] = (image.files ?? []).map((f) => ({ source: f.source, target: f.target, readOnly: true }));
  const subPathDirs: string[] = [];
  for (const m of container.volumeMounts ?? []) {
    const hostDir = input.volumes[m.name];
    if (hostDir === undefined) {
      return { ok: false, reason: 'CreateContainerConfigError', message: `volumeMount ${m.name}: no volume of that name` };
    }
    const sub = m.subPathExpr ? expandVars(m.subPathExpr, env.env) : (m.subPath ?? '');
    if (sub && (path.posix.isAbsolute(sub) || sub.split('/').includes('..'))) {
      return { ok: false, reason: 'CreateContainerConfigError', message: `volumeMount ${m.name}: invalid subPath "${sub}"` };
    }
    const source = sub ? path.join(hostDir, sub) : hostDir;
    if (sub) subPathDirs.push(source);
    mounts.push({ source, target: m.mountPath, readOnly: m.readOnly === true });
  }
  return {
    ok: true,
    launch: {
      argv: containerArgv(image, container, env.env),
      env: env.env,
      workingDir: container.workingDir || '/',
      mounts,
      subPathDirs,
    },
  };
}
