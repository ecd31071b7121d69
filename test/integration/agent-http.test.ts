// The agent's HTTP endpoints over real HTTP against real Tarantool: /healthz, /readyz, /status,
// /metrics through startAgent (shoal.lua, console, instance, server), and main.ts as a process.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import { startAgent, type Agent } from '../../agent/runtime.js';
import { createLogger } from '../../common/log.js';
import { eventually, freePort, TarantoolFleet, TEST_CLUSTER, TEST_CREDENTIALS, TEST_NAMESPACE, TEST_REPLICASET, type TarantoolInstance } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

function configFor(t: TarantoolInstance, pod: string, port: number): AgentConfig {
  return {
    pod,
    namespace: TEST_NAMESPACE,
    podIp: '127.0.0.1',
    cluster: TEST_CLUSTER,
    replicaset: TEST_REPLICASET,
    port,
    listenPort: t.port,
    meshPort: port + 1,
    bindHost: '127.0.0.1',
    runDir: t.runDir,
    consoleSocket: t.consoleSocket,
    tarantoolLog: t.logPath,
    replicationUser: TEST_CREDENTIALS.user,
    replicationPassword: TEST_CREDENTIALS.password,
    timings: { leaseSeconds: 15, failoverTimeoutMs: 10_000, prestopTimeoutMs: 30_000, consoleTimeoutMs: 20_000, statusTimeoutMs: 2_000 },
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string; json: () => Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  return { status: res.status, body, json: () => JSON.parse(body) as Record<string, unknown> };
}

describe('agent HTTP endpoints', () => {
  const fleet = new TarantoolFleet();
  const agents: Agent[] = [];
  let m: TarantoolInstance;
  let r: TarantoolInstance;
  let ma: Agent;
  let ra: Agent;
  let mPort: number;
  let rPort: number;

  beforeAll(async () => {
    [m, r] = await Promise.all([fleet.start('storage-0'), fleet.start('storage-1')]);
    [mPort, rPort] = await Promise.all([freePort(), freePort()]);
    const log = createLogger({ component: 'test' });
    ma = await startAgent(configFor(m, 'storage-0', mPort), log, { processMetrics: true });
    ra = await startAgent(configFor(r, 'storage-1', rPort), log, { processMetrics: false });
    agents.push(ma, ra);
    expect(await ma.consoleReady).toBe(true);
    expect(await ra.consoleReady).toBe(true);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await fleet.cleanup();
  });

  it('is healthy at once and not ready before box.cfg', async () => {
    expect((await get(mPort, '/healthz')).status).toBe(200);
    const ready = await get(mPort, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json()).toEqual({ ready: false, reason: 'not configured (waiting)' });
    const status = (await get(mPort, '/status')).json();
    expect(status).toMatchObject({
      cluster: TEST_CLUSTER,
      namespace: TEST_NAMESPACE,
      pod: 'storage-0',
      replicaset: TEST_REPLICASET,
      instance: { uuid: ma.instance.identity.instanceUuid, role: 'unconfigured', phase: 'waiting', id: null, listen: m.address, pid: m.pid },
      coordinator: null,
      mesh: [],
      replicasets: [],
      rollout: null,
    });
  });

  it('reports a configured master and replica in /status, /readyz and /metrics', async () => {
    await ma.instance.bootstrap({ role: 'master', timeoutMs: 60_000 });
    await ra.instance.bootstrap({ role: 'replica', master: { uuid: ma.instance.identity.instanceUuid, address: m.address }, peers: [m.address], timeoutMs: 60_000 });

    expect((await get(mPort, '/readyz')).json()).toEqual({ ready: true, reason: 'master' });
    await eventually(async () => ((await get(rPort, '/readyz')).status === 200 ? true : undefined));

    const ms = (await get(mPort, '/status')).json();
    expect(ms['instance']).toMatchObject({ role: 'master', ro: false, status: 'running', id: 1, lag: 0, pid: m.pid });
    // upstream.lag appears with the first row or heartbeat from the master.
    const rs = await eventually(async () => {
      const doc = (await get(rPort, '/status')).json();
      return typeof (doc['instance'] as { lag: unknown }).lag === 'number' ? doc : undefined;
    });
    expect(rs['instance']).toMatchObject({ role: 'replica', ro: true, status: 'running', id: 2 });

    const metrics = (await get(mPort, '/metrics')).body;
    expect(metrics).toContain('shoal_instance_up 1');
    expect(metrics).toContain('shoal_instance_role{role="master"} 1');
    expect(metrics).toContain('shoal_instance_role{role="replica"} 0');
    expect(metrics).toContain('shoal_instance_read_only 0');
    expect(metrics).toMatch(/shoal_instance_vclock\{component="1"\} \d+/);
    expect(metrics).toContain('shoal_replication_lag_seconds 0');
    expect(metrics).toMatch(/shoal_console_request_duration_seconds_bucket\{le="0.005",outcome="ok"\} \d+/);
    expect(metrics).toContain('process_resident_memory_bytes');
    const rmetrics = await eventually(async () => {
      const body = (await get(rPort, '/metrics')).body;
      return /shoal_replication_lag_seconds \d/.test(body) ? body : undefined;
    });
    expect(rmetrics).toContain(`shoal_replication_upstream_following{peer_uuid="${ma.instance.identity.instanceUuid}"} 1`);
    expect(rmetrics).toMatch(/shoal_replication_lag_seconds \d/);
  });

  it('shows what the cluster status provider reports', async () => {
    ra.http.setClusterStatusProvider({
      clusterStatus: () => ({
        coordinator: { pod: 'storage-0', term: 7, self: false },
        mesh: [{ pod: 'storage-0', connected: true, lastSeenMs: 120 }],
        replicasets: [{ name: 'storage', master: 'storage-0', instances: [{ pod: 'storage-1', role: 'replica', healthy: true, lag: 0 }] }],
        rollout: { replicaset: 'storage', phase: 'idle', next: null },
      }),
    });
    expect((await get(rPort, '/status')).json()).toMatchObject({ coordinator: { term: 7 }, mesh: [{ connected: true }], rollout: { phase: 'idle' } });
  });

  it('turns not ready when the master dies, and reports an unreachable Tarantool fast', async () => {
    await m.kill('SIGKILL');
    const notReady = await eventually(async () => {
      const res = await get(rPort, '/readyz');
      return res.status === 503 ? res.json() : undefined;
    });
    expect(String(notReady['reason'])).toMatch(/upstream/);

    const started = Date.now();
    const status = (await get(mPort, '/status')).json();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(status['instance']).toMatchObject({ status: 'unreachable', role: 'unconfigured', pid: null });
    expect(String((status['instance'] as { error: string }).error)).toMatch(/Tarantool is gone/);
    expect((await get(mPort, '/readyz')).status).toBe(503);
    expect((await get(mPort, '/metrics')).body).toContain('shoal_instance_up 0');
    expect((await get(mPort, '/healthz')).status).toBe(200);
    expect((await get(mPort, '/metrics')).body).toMatch(/shoal_console_errors_total\{kind="gone"\} \d+/);
  });
});

describe('shoal-agent main', () => {
  it('refuses a bad environment with every problem listed', async () => {
    const res = await run({ POD_NAME: 'x', SHOAL_CLUSTER: 'Bad_Name', SHOAL_PORT: 'abc' }, 30_000);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('POD_NAMESPACE is not set');
    expect(res.stderr).toContain('POD_IP is not set');
    expect(res.stderr).toContain('SHOAL_CLUSTER="Bad_Name" is not a DNS-1123 label');
    expect(res.stderr).toContain('SHOAL_PORT="abc"');
  });

  it('refuses to start without a Kubernetes configuration, saying how to give it one', async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'shoal-main-'));
    try {
      const port = await freePort();
      const env = { HOME: runDir, POD_NAME: 'storage-0', POD_NAMESPACE: 'it', POD_IP: '127.0.0.1', SHOAL_CLUSTER: 'test', SHOAL_PORT: String(port), SHOAL_BIND_HOST: '127.0.0.1', SHOAL_RUN_DIR: runDir };
      const res = await run(env, 30_000);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/cannot load a Kubernetes client configuration: .*\(fix: run inside a pod with a service account, or set KUBECONFIG/);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });

  it('starts, writes shoal.lua, serves /healthz and stops cleanly on SIGTERM (API server unreachable)', async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'shoal-main-'));
    try {
      const port = await freePort();
      // Nothing listens on port 1: coordination keeps retrying in the background, the local endpoints serve.
      const kubeconfig = join(runDir, 'kubeconfig');
      await writeFile(
        kubeconfig,
        ['apiVersion: v1', 'kind: Config', 'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]', 'users: [{name: u, user: {token: t}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n'),
      );
      const env = { KUBECONFIG: kubeconfig, POD_NAME: 'storage-0', POD_NAMESPACE: 'it', POD_IP: '127.0.0.1', SHOAL_CLUSTER: 'test', SHOAL_PORT: String(port), SHOAL_BIND_HOST: '127.0.0.1', SHOAL_RUN_DIR: runDir, SHOAL_LOG_LEVEL: 'info' };
      const res = await run(env, 60_000, async (kill) => {
        await eventually(async () => ((await get(port, '/healthz').catch(() => undefined))?.status === 200 ? true : undefined), 45_000, 100);
        expect((await get(port, '/status')).json()['instance']).toMatchObject({ status: 'unreachable' });
        kill('SIGTERM');
      });
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('shoal.lua written');
      expect(res.stdout).toContain('agent stopped');
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });
});

/** Runs agent/main.ts under tsx with `env`; `during` may probe it and send signals. */
async function run(
  env: Record<string, string>,
  boundMs: number,
  during?: (kill: (s: NodeJS.Signals) => void) => Promise<void>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'agent/main.ts'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
  try {
    if (during) await during((s) => child.kill(s));
    return { code: await exited, stdout, stderr };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
}
