import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../demo/repo-root.js';
import type { DemoState } from '../../demo/state-file.js';
import { unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { pidsOfUids } from '../../localcluster/kubelet/process.js';
import { agentStatus } from '../../tools/shoal-cluster.js';
import { waitFor } from '../../tools/kube.js';

// `npm run demo` as a user runs it (the built demo, as its own process with its own local cluster):
// it brings up a replica set with one master, keeps the --state-file true to the API server, and
// after Ctrl-C leaves no process behind.

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replaceAll('\0', ' ').includes(text)) found.push(`${entry}: ${cmd.replaceAll('\0', ' ').slice(0, 160)}`);
  }
  return found;
}

describe('npm run demo', () => {
  let demo: ChildProcess | undefined;
  let runDir: string | undefined;
  afterAll(async () => {
    if (demo?.exitCode === null) demo.kill('SIGKILL');
    if (runDir) await rm(runDir, { recursive: true, force: true });
  });

  it('forms the example replica set, reports it in the state file, and stops every process on Ctrl-C', async () => {
    runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-demo-test-'));
    const stateFile = path.join(runDir, 'state.json');
    const ipBase = freeIpBase(30, 39);
    let output = '';
    demo = spawn(process.execPath, [path.join(repoRoot(), 'dist/demo/main.js'), '--state-file', stateFile, '--run-dir', path.join(runDir, 'cluster'), '--ip-base', ipBase], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    demo.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((resolve) => demo?.once('exit', (code) => resolve(code)));

    await waitFor('the demo to print its pods table', () => output.includes('Press Ctrl-C') || undefined, { timeoutMs: 300_000, intervalMs: 500 });
    expect(output).toContain('All pods are Ready.');
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as DemoState;
    expect(Object.keys(state.pods).sort()).toEqual(['storage-0', 'storage-1', 'storage-2']);
    expect(existsSync(state.kubeconfig)).toBe(true);
    const roles: string[] = [];
    const pids: number[] = [];
    for (const pod of Object.values(state.pods)) {
      expect(pod.tarantoolPid).toBeGreaterThan(0);
      expect(pod.agentPid).toBeGreaterThan(0);
      expect(pod.console && existsSync(pod.console)).toBe(true);
      pids.push(pod.tarantoolPid!, pod.agentPid!);
      roles.push((await agentStatus(pod.ip))?.instance.role ?? 'none');
    }
    expect(roles.sort()).toEqual(['master', 'replica', 'replica']);
    // Tarantool 3 in its own config style: named after the pods, one owner of the synchronous queue.
    const instances = await Promise.all(Object.entries(state.pods).map(async ([name, pod]) => ({ name, i: (await agentStatus(pod.ip))?.instance })));
    const owners = new Set<number>();
    for (const { name, i } of instances) {
      expect(i?.version).toMatch(/^3\./);
      expect(i).toMatchObject({ style: 'native', name });
      expect(i?.synchro?.term ?? 0).toBeGreaterThan(0);
      owners.add(i?.synchro?.owner ?? 0);
    }
    const master = instances.find((x) => x.i?.role === 'master')?.i;
    expect([...owners]).toEqual([master?.id]);

    demo.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 120_000))]);
    expect(code).toBe(0);
    expect(output).toContain('Stopped.');
    expect(pids.filter(isAlive)).toEqual([]);
    const [minUid, maxUid] = unixUidRange(ipBase, 200_000);
    expect(pidsOfUids(minUid, maxUid)).toEqual([]);
    expect(await processesMentioning(runDir)).toEqual([]);
  });
});
