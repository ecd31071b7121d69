import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ShoalError } from '../common/errors.js';

// Which Tarantool binary runs for which version, in the local world (the process kubelet's image
// table, integration tests, benchmarks). Users deploy tarantool/tarantool:3.x: scripts/provision-
// tarantool.sh builds 3.8.0 from the vendored source into the cache; Debian's package is 2.6.0,
// kept as the compatibility lane.

/** The versions the local world can run. */
export type TarantoolLane = '3' | '2.6';

export const TARANTOOL_LANES: readonly TarantoolLane[] = ['3', '2.6'];

function cacheDir(): string {
  return process.env['SHOAL_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'shoal');
}

/** Where provision-tarantool.sh installs its build. */
export function cachedTarantool3(): string {
  return path.join(cacheDir(), 'tarantool-3.8.0', 'bin', 'tarantool');
}

/**
 * The root of vshard 0.1.42 as scripts/provision-vshard.sh unpacks it (`<root>/vshard/init.lua`): the
 * 3 lane runs sharded clusters with it (docs/TARANTOOL3.md). Throws with the fix when missing.
 */
export function vshardRoot(): string {
  const root = path.join(cacheDir(), 'vshard-0.1.42');
  if (existsSync(path.join(root, 'vshard', 'init.lua'))) return root;
  throw new ShoalError(`vshard 0.1.42 is not unpacked in ${root}`, 'run `bash scripts/provision-vshard.sh` (unpacks the vendored tarball once)');
}

/** LUA_PATH entries that make `require('vshard')` find the unpacked vshard, for a process on this host. */
export function vshardLuaPath(): string {
  const root = vshardRoot();
  return `${root}/?.lua;${root}/?/init.lua`;
}

/** The major version a binary reports, or undefined when it does not run. */
export function majorVersionOf(binary: string): number | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /^Tarantool (\d+)\./.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

const resolved = new Map<TarantoolLane, string>();

/**
 * The binary of a lane. 3: $SHOAL_TARANTOOL3, else the cached build, else a `tarantool` >= 3 on
 * PATH. 2.6: $SHOAL_TARANTOOL26, else Debian's /usr/bin/tarantool. Throws with the fix when missing.
 */
export function tarantoolBinary(lane: TarantoolLane): string {
  const known = resolved.get(lane);
  if (known) return known;
  const found = lane === '3' ? findTarantool3() : findTarantool26();
  resolved.set(lane, found);
  return found;
}

function findTarantool3(): string {
  const candidates = [process.env['SHOAL_TARANTOOL3'], cachedTarantool3(), 'tarantool'].filter((c): c is string => !!c);
  for (const c of candidates) {
    if (c.includes('/') && !existsSync(c)) continue;
    if ((majorVersionOf(c) ?? 0) >= 3) return c;
  }
  throw new ShoalError(
    `no Tarantool 3 found (tried ${candidates.join(', ')})`,
    'run `bash scripts/provision-tarantool.sh` (builds 3.8.0 from the vendored source) or set SHOAL_TARANTOOL3',
  );
}

function findTarantool26(): string {
  const c = process.env['SHOAL_TARANTOOL26'] ?? '/usr/bin/tarantool';
  const major = majorVersionOf(c);
  if (major === 2) return c;
  throw new ShoalError(`${c} is not a Tarantool 2.x (${major === undefined ? 'does not run' : `major ${major}`})`, 'apt-get install tarantool (Debian 12: 2.6.0), or set SHOAL_TARANTOOL26');
}

/**
 * A lane named by a person (`--tarantool 3`, SHOAL_TARANTOOL_LANE=2.6): exactly one of
 * TARANTOOL_LANES, else a ShoalError naming where the value came from and what is accepted.
 */
export function parseLane(value: string, source: string): TarantoolLane {
  if (value === '3' || value === '2.6') return value;
  throw new ShoalError(
    `${source} ${JSON.stringify(value)} is not a Tarantool version the local cluster runs`,
    `use one of ${TARANTOOL_LANES.join(', ')} (3: Tarantool 3.8.0 built from the vendored source; 2.6: Debian's 2.6.0)`,
  );
}

/** Whether a Tarantool version string (box.info.version, `tarantool --version`) belongs to the lane. */
export function versionMatchesLane(lane: TarantoolLane, version: string): boolean {
  const v = version.replace(/^Tarantool\s+/, '');
  return lane === '3' ? /^3\./.test(v) : /^2\.6\./.test(v);
}

/** The lane tests and benchmarks use unless told otherwise ($SHOAL_TARANTOOL_LANE). */
export function defaultLane(): TarantoolLane {
  const v = process.env['SHOAL_TARANTOOL_LANE'];
  if (v === undefined || v === '') return '3';
  return parseLane(v, 'SHOAL_TARANTOOL_LANE');
}

/** The image a StatefulSet of `lane` runs (the process kubelet maps it back to the binary). */
export function tarantoolImage(lane: TarantoolLane): string {
  return lane === '3' ? 'tarantool/tarantool:3.8' : 'tarantool/tarantool:2.6';
}
