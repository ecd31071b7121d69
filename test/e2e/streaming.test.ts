import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../demo/repo-root.js';
import { debianKubectlPath } from '../../localcluster/controlplane/index.js';
import type { AgentStatus } from '../../common/status.js';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { clusterCa, createNamespace, deleteNamespace, kubeClients, kubectl, podRuntime, waitFor } from '../../tools/kube.js';
import { waitForReplicaSet } from '../../tools/shoal-cluster.js';

// kubectl port-forward and exec on the local cluster (issue 17), through the real API server to
// the process kubelet, with Debian's kubectl 1.20 (the control plane's version) and with the
// kubectl on PATH when it is another one (newer ones try WebSocket first and must fall back to
// SPDY). The example replica set runs in this file's namespace; the README's "Looking at a
// cluster" commands are run as written there, with only the local port and the namespace swapped.

const adminKubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const k = kubeClients(adminKubeconfig);
const run = promisify(execFile);
let ns = '';
let tmp = '';
/** The admin kubeconfig with this file's namespace as the context's default (so the README's commands need no -n). */
let kubeconfig = '';

interface Kubectl {
  name: string;
  bin: string;
  /** 1.30+ tries WebSocket before SPDY. */
  websocketFirst: boolean;
}

async function minorOf(bin: string): Promise<number> {
  const { stdout } = await run(bin, ['version', '--client', '-o', 'json']);
  return parseInt((JSON.parse(stdout) as { clientVersion: { minor: string } }).clientVersion.minor, 10);
}

const kubectls: Kubectl[] = [];
const debian = debianKubectlPath();
if (!existsSync(debian)) throw new Error(`${debian} is missing: run scripts/provision-kubernetes.sh`);
const onPath = await run('sh', ['-c', 'command -v kubectl']).then((r) => r.stdout.trim(), () => '');
const debianMinor = await minorOf(debian);
kubectls.push({ name: `Debian's 1.${debianMinor}`, bin: debian, websocketFirst: false });
if (onPath) {
  const minor = await minorOf(onPath);
  if (minor !== debianMinor) kubectls.push({ name: `${onPath} (1.${minor})`, bin: onPath, websocketFirst: minor >= 30 });
}

function kubectlRun(kc: Kubectl, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(kc.bin, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Forward {
  port: number;
  output: () => string;
  /** Ctrl-C: resolves with kubectl's exit code. */
  interrupt(): Promise<number | null>;
}

const forwards = new Set<ChildProcess>();

/** Starts `command` (a kubectl port-forward) and waits until it forwards; the local port is what it printed. */
async function startForward(command: string[], env: NodeJS.ProcessEnv): Promise<Forward> {
  const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  forwards.add(child);
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => forwards.delete(child));
  const port = await waitFor(`${command.join(' ')} forwarding`, () => {
    if (child.exitCode !== null) throw new Error(`port-forward exited ${child.exitCode}: ${output}`);
    const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(output);
    return m ? Number(m[1]) : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  return {
    port,
    output: () => output,
    interrupt: async () => {
      child.kill('SIGINT');
      return Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]).then((c) => (c === 'hung' ? -1 : c));
    },
  };
}

async function status(port: number): Promise<AgentStatus> {
  const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as AgentStatus;
}

beforeAll(async () => {
  ns = await createNamespace(k.client, 'stream');
  await applyObjects(k.client, agentRbacObjects(ns));
  const applied = await kubectl(adminKubeconfig, ['apply', '-n', ns, '-f', path.join(repoRoot(), 'examples', 'storage.yaml')]);
  if (applied.code !== 0) throw new Error(`kubectl apply examples/storage.yaml: ${applied.stderr}`);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'shoal-streaming-'));
  kubeconfig = path.join(tmp, 'kubeconfig');
  await writeFile(kubeconfig, await readFile(adminKubeconfig), { mode: 0o600 });
  const ctx = await kubectl(kubeconfig, ['--kubeconfig', kubeconfig, 'config', 'set-context', '--current', `--namespace=${ns}`]);
  if (ctx.code !== 0) throw new Error(`kubectl config set-context: ${ctx.stderr}`);
  await waitForReplicaSet(k, ns, 'storage', 3, { timeoutMs: 240_000 });
});

afterAll(async () => {
  for (const child of forwards) child.kill('SIGKILL');
  if (ns) await deleteNamespace(k.client, ns);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.each(kubectls)('kubectl $name', (kc) => {
  it('runs the README\'s "Looking at a cluster" commands', async () => {
    const readme = readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
    const block = /## Looking at a cluster\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const lines = block!.split('\n').map((l) => l.replace(/\s+#[^'"]*$/, '').trim()).filter(Boolean);
    const readmePort = /port-forward pod\/\S+ (\d+):8080 &$/.exec(lines[0]!)?.[1];
    expect(readmePort).toBeDefined();
    const port = String(await freePort());
    // This kubectl first on PATH, for the lines that name plain `kubectl`.
    const bin = path.join(tmp, `bin-${kubectls.indexOf(kc)}`);
    await rm(bin, { recursive: true, force: true });
    await run('mkdir', ['-p', bin]);
    await symlink(kc.bin, path.join(bin, 'kubectl'));
    const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const outputs: string[] = [];
    let forward: Forward | undefined;
    try {
      for (const line of lines) {
        const cmd = line.replaceAll(readmePort!, port).replace('-n default', `-n ${ns}`);
        if (cmd.endsWith('&')) {
          forward = await startForward(['sh', '-c', `exec ${cmd.slice(0, -1)}`], env);
          expect(forward.port).toBe(Number(port));
          continue;
        }
        const r = await run('bash', ['-o', 'pipefail', '-c', cmd], { env, cwd: repoRoot(), timeout: 60_000 }).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
          throw new Error(`\`${cmd}\` failed (${err.code}): ${err.stderr ?? ''}${err.stdout ?? ''}`);
        });
        outputs.push(r.stdout);
      }
    } finally {
      expect(await forward?.interrupt()).toBe(0);
    }
    const [curlJq, statusUrl, exec, statusCluster] = outputs as [string, string, string, string];
    const viaCurl = JSON.parse(curlJq) as AgentStatus;
    expect(viaCurl.pod).toBe('storage-0');
    for (const text of [statusUrl, statusCluster]) for (const pod of ['storage-0', 'storage-1', 'storage-2']) expect(text).toContain(pod);
    const uid = podRuntime(stateFile, ns, 'storage-0')?.unixUid;
    expect(exec.trim()).toBe(`storage-0: ${uid} in /`);
  });

  it('carries many concurrent requests through one forward, and stops cleanly on Ctrl-C', async () => {
    const forward = await startForward([kc.bin, 'port-forward', 'pod/storage-1', ':8080'], { ...process.env, KUBECONFIG: kubeconfig });
    let code: number | null;
    try {
      const many = await Promise.all(Array.from({ length: 40 }, () => status(forward.port)));
      expect(new Set(many.map((s) => s.pod))).toEqual(new Set(['storage-1']));
    } finally {
      code = await forward.interrupt();
    }
    expect(code).toBe(0);
    expect(forward.output()).not.toMatch(/error|unable/i);
    // The listener went with kubectl.
    await expect(fetch(`http://127.0.0.1:${forward.port}/status`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
  });

  it('tells kubectl when nothing listens on the forwarded port', async () => {
    const forward = await startForward([kc.bin, 'port-forward', 'pod/storage-2', ':8080', ':9'], { ...process.env, KUBECONFIG: kubeconfig });
    try {
      const port = Number(/Forwarding from 127\.0\.0\.1:(\d+) -> 9/.exec(await waitFor('second forward', () => (forward.output().includes('-> 9') ? forward.output() : undefined), { timeoutMs: 10_000 }))?.[1]);
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
      await waitFor('the error stream reaching kubectl', () => /error forwarding port 9 to pod .*storage-2.*ECONNREFUSED/.test(forward.output()) || undefined, { timeoutMs: 15_000 });
    } finally {
      await forward.interrupt();
    }
  });

  it('execs in the Tarantool container: output, input, exit codes, WebSocket fallback', async () => {
    const hi = await kubectlRun(kc, ['exec', 'storage-0', '-c', 'tarantool', '-v=6', '--', 'echo', 'hi']);
    expect({ code: hi.code, stdout: hi.stdout }).toEqual({ code: 0, stdout: 'hi\n' });
    if (kc.websocketFirst) expect(hi.stderr).toMatch(/fallback.*websocket: bad handshake \(403 Forbidden\)/i);

    const three = await kubectlRun(kc, ['exec', 'storage-0', '-c', 'tarantool', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(three).toMatchObject({ code: 3, stdout: 'out\n' });
    expect(three.stderr).toContain('err\n');
    expect(three.stderr).toContain('command terminated with exit code 3');

    const echo = await kubectlRun(kc, ['exec', '-i', 'storage-1', '-c', 'tarantool', '--', 'sh', '-c', 'cat; echo "$HOSTNAME"'], 'from stdin\n');
    expect({ code: echo.code, stdout: echo.stdout }).toEqual({ code: 0, stdout: 'from stdin\nstorage-1\n' });

    // More than SPDY's 64 KiB initial window (kubectl never grants more).
    const big = await kubectlRun(kc, ['exec', 'storage-2', '-c', 'tarantool', '--', 'sh', '-c', "head -c 300000 /dev/zero | tr '\\0' x"]);
    expect({ code: big.code, length: big.stdout.length, onlyX: /^x*$/.test(big.stdout) }).toEqual({ code: 0, length: 300000, onlyX: true });
  });
});

describe('the kubelet API', () => {
  it('lets in only the API server, not even an admin', async () => {
    const node = await k.nodes.get(inject('nodeName'));
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    const pki = path.join(path.dirname(path.dirname(adminKubeconfig)), 'pki');
    const get = (cert?: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = https.get(
          {
            host: '127.0.0.1',
            port,
            path: `/exec/${ns}/storage-0/tarantool?command=id&output=1`,
            rejectUnauthorized: false,
            ca: clusterCa(adminKubeconfig),
            ...(cert ? { cert: readFileSync(path.join(pki, `${cert}.crt`)), key: readFileSync(path.join(pki, `${cert}.key`)) } : {}),
          },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
      });
    expect(await get()).toMatchObject({ status: 401 });
    expect(await get('admin')).toMatchObject({ status: 403, body: expect.stringContaining('user=shoal-admin') as string });
    // The API server's certificate is let in (a plain GET is then refused for want of an upgrade).
    expect(await get('apiserver-kubelet-client')).toMatchObject({ status: 400, body: expect.stringContaining('unable to upgrade') as string });
  });
});
