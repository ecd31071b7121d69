// Writes shoal.lua (SPEC §3) into the run directory, where the Tarantool container's LUA_PATH
// finds it. The source ships next to this file (copied into dist/ by scripts/copy-assets.mjs).
import { readFile, writeFile, rename, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ShoalError } from '../../common/errors.js';

export const LUA_MODULE_FILE = 'shoal.lua';
/** TT_PRELOAD of the 3.x native style: Tarantool runs it before its config module starts. */
export const LUA_PRELOAD_FILE = 'preload.lua';
const PRELOAD_SOURCE = "-- Written by the Shoal agent: waits for the cluster part of the config (shoal.lua, preload()).\nrequire('shoal').preload()\n";

export async function shoalLuaSource(): Promise<string> {
  return readFile(new URL('./shoal.lua', import.meta.url), 'utf8');
}

/**
 * Writes `<runDir>/shoal.lua` atomically (a Tarantool starting at the same moment never reads half
 * a file) and world-readable (Tarantool runs as another user). Returns the path.
 */
export async function installShoalLua(runDir: string): Promise<string> {
  const target = join(runDir, LUA_MODULE_FILE);
  try {
    await mkdir(runDir, { recursive: true });
    await writeAtomically(join(runDir, LUA_PRELOAD_FILE), PRELOAD_SOURCE);
    await writeAtomically(target, await shoalLuaSource());
  } catch (err) {
    throw new ShoalError(
      `cannot write ${target}: ${err instanceof Error ? err.message : String(err)}`,
      'mount a writable volume at the run directory (SHOAL_RUN_DIR, default /var/run/shoal)',
      { cause: err },
    );
  }
  return target;
}

async function writeAtomically(target: string, text: string): Promise<void> {
  const tmp = `${target}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, target);
}

/** The LUA_PATH value that makes require('shoal') find the module in `runDir`. */
export function luaPathFor(runDir: string): string {
  return `${runDir}/?.lua;;`;
}
