import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockIpBase } from '../../localcluster/kubelet/ipbase-lock.js';

describe('one kubelet per pod IP base', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'shoal-lock-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a base a live kubelet holds, with the fix, and frees it on release', () => {
    const lock = lockIpBase('127.0.7', dir);
    expect(() => lockIpBase('127.0.7', dir)).toThrow(/taken by a kubelet in process \d+.*another ipBase \(e\.g\. 127\.0\.8\)/);
    expect(lockIpBase('127.0.9', dir).file).not.toBe(lock.file); // other bases are independent
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
    lockIpBase('127.0.7', dir).release();
  });

  it('takes over the lock of a dead owner', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid; // exited already
    writeFileSync(path.join(dir, 'ipbase-127.0.7.lock'), JSON.stringify({ pid: dead, token: 'x', startedAt: 'then' }));
    const lock = lockIpBase('127.0.7', dir);
    expect(existsSync(lock.file)).toBe(true);
    lock.release();
  });
});
