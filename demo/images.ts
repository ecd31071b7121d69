import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ShoalError } from '../common/errors.js';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { runtimeEnv } from '../localcluster/kubelet/launch.js';
import type { ImageSpec, ImageTable } from '../localcluster/kubelet/types.js';
import { repoRoot } from './repo-root.js';
import { tarantoolBinary, vshardRoot, type TarantoolLane } from './tarantool-binaries.js';

// What Shoal's images are on the process kubelet: the agent runs from the build, Tarantool from the
// binary of its lane. The local cluster itself knows only the host's node and shell (hostImages).

/**
 * A Tarantool image of `lane`: the lane's binary shown at /opt/shoal-image/tarantool-<lane>/bin and
 * first on PATH, as the image's own /usr/bin would be (the 3.8 build sits under root's cache, which
 * pod uids cannot traverse). The 3 lane also carries vshard where a rock installed into an image
 * lands on Tarantool's default package.path (/usr/local/share/tarantool/vshard), so `require('vshard')`
 * works whatever LUA_PATH the pod sets (the webhook keeps the default with `;;`). Missing binary: no
 * entry, so the pod fails with ErrImagePull naming the table; missing vshard: the image runs without it.
 */
function tarantoolImageSpec(lane: TarantoolLane): ImageSpec | undefined {
  let binary: string;
  try {
    binary = tarantoolBinary(lane);
  } catch {
    return undefined;
  }
  const bin = `/opt/shoal-image/tarantool-${lane}/bin`;
  const files = [{ source: realpathSync(binary.includes('/') ? binary : which(binary)), target: `${bin}/tarantool` }];
  const vshard = lane === '3' ? vshardSource() : undefined;
  if (vshard) files.push({ source: vshard, target: VSHARD_IMAGE_DIR });
  return { entrypoint: ['tarantool'], env: { PATH: `${bin}:${runtimeEnv('').PATH ?? ''}` }, files };
}

/** Where the Tarantool 3 image shows vshard's Lua package (on Tarantool's default package.path). */
export const VSHARD_IMAGE_DIR = '/usr/local/share/tarantool/vshard';

function vshardSource(): string | undefined {
  try {
    return path.join(vshardRoot(), 'vshard');
  } catch {
    return undefined;
  }
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
