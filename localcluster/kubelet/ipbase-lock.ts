import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ShoalError } from '../../common/errors.js';

// One kubelet per pod IP base on a machine. Two on the same base would hand out the same IPs and
// uids, and each would take the other's processes for leftovers (the start-up sweep kills every
// process in the base's uid range). The lock file names its owner's pid; a dead owner's lock is
// taken over (its leftover processes are then fair game).

export interface IpBaseLock {
  readonly file: string;
  release(): void;
}

interface LockContent {
  pid: number;
  token: string;
  startedAt: string;
}

export function defaultLockDir(): string {
  return process.env.SHOAL_LOCK_DIR ?? path.join(os.tmpdir(), 'shoal-kubelet-locks');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockContent | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockContent;
  } catch {
    return undefined;
  }
}

/** Is the base held by a live kubelet right now? (A hint for picking one: only the lock itself is race-free.) */
export function ipBaseTaken(ipBase: string, dir = defaultLockDir()): boolean {
  const owner = readLock(path.join(dir, `ipbase-${ipBase}.lock`));
  return owner !== undefined && alive(owner.pid);
}

/** The first of `127.0.<from>` … `127.0.<to>` no live kubelet holds (e.g. for tests that may run side by side). */
export function freeIpBase(from: number, to: number, dir = defaultLockDir()): string {
  for (let c = from; c <= to; c++) if (!ipBaseTaken(`127.0.${c}`, dir)) return `127.0.${c}`;
  throw new ShoalError(`every pod IP base 127.0.${from}-${to} is taken by a running kubelet`, 'stop some local clusters');
}

function nextBase(ipBase: string): string {
  const [a, b, c] = ipBase.split('.').map(Number) as [number, number, number];
  return c < 255 ? `${a}.${b}.${c + 1}` : `${a}.${b + 1}.0`;
}

export function lockIpBase(ipBase: string, dir = defaultLockDir()): IpBaseLock {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ipbase-${ipBase}.lock`);
  const mine: LockContent = { pid: process.pid, token: randomBytes(8).toString('hex'), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
      return {
        file,
        release: () => {
          if (readLock(file)?.token === mine.token) unlinkSync(file);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readLock(file);
    if (owner && alive(owner.pid)) {
      throw new ShoalError(
        `pod IP base ${ipBase} is taken by a kubelet in process ${owner.pid} (since ${owner.startedAt}; lock ${file})`,
        `give this local cluster another ipBase (e.g. ${nextBase(ipBase)}) or stop the other one`,
      );
    }
    try {
      unlinkSync(file); // its owner died: take over
    } catch {
      // someone else took it over first; the next attempt tells
    }
  }
  throw new ShoalError(`could not lock pod IP base ${ipBase} (${file})`);
}
