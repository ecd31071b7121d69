import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ShoalError } from '../common/errors.js';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { runtimeEnv } from '../localcluster/kubelet/launch.js';
import type { ImageSpec, ImageTable } from '../localcluster/kubelet/types.js';
import { repoRoot } from './repo-root.js';
import { tarantoolBinary, type TarantoolLane } from './tarantool-binaries.js';

// What Shoal's images are on the process kubelet: the agent runs from the build, Tarantool from the
// binary of its lane. The local cluster itself knows only the host's node and shell (hostImages).

/**
 * A Tarantool image of `lane`: the lane's binary shown at /opt/shoal-image/tarantool-<lane>/bin and
 * first on PATH, as the image's own /usr/bin would be (the 3.8 build sits under root's cache, which
 * pod uids cannot traverse). Missing binary: no entry, so the pod fails with ErrImagePull naming the table.
 */
function tarantoolImageSpec(lane: TarantoolLane): ImageSpec | undefined {
  let binary: string;
  try {
    binary = tarantoolBinary(lane);
  } catch {
    return undefined;
  }
  const bin = `/opt/shoal-image/tarantool-${lane}/bin`;
  return {
    entrypoint: ['tarantool'],
    env: { PATH: `${bin}:${runtimeEnv('').PATH ?? ''}` },
    files: [{ source: realpathSync(binary.includes('/') ? binary : which(binary)), target: `${bin}/tarantool` }],
  };
}

/** A command's path on this process's PATH. */
function which(command: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = path.join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new ShoalError(`${command} is not on PATH`);
}

/** Shoal's agent image and the Tarantool images, added to the local cluster's host images. */
export function shoalImages(root = repoRoot()): ImageTable {
  // Tags choose the version, as on a real cluster: :3* (and no tag, i.e. latest) → Tarantool 3,
  // :2* → Debian's 2.6.0.
  const t3 = tarantoolImageSpec('3');
  const t26 = tarantoolImageSpec('2.6');
  return {
    // The agent runs from the build (`npm run build` first), with the node flags of its image.
    'shoal/agent': { entrypoint: [process.execPath, ...AGENT_NODE_FLAGS, path.join(root, 'dist', 'agent', 'main.js')] },
    ...(t3 ? { 'tarantool/tarantool': t3, 'tarantool/tarantool:3': t3 } : {}),
    ...(t26 ? { 'tarantool/tarantool:2': t26 } : {}),
  };
}
