// Agent idle RSS (SPEC §7): VmRSS of the three shoal-agent processes of a settled 3-instance
// replica set, read from /proc after a few idle seconds (the kubelet runs them on this machine),
// against a bare `node` idling beside them (the floor any Node program starts from). In the same run:
// the webhook's idle RSS (its own process, as its image runs it, against the same floor) and the
// agents' CPU over the idle window (what the agent's V8 flags, agent/node-flags.ts, may cost).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_CONTAINER } from '../common/names.js';
import { repoRoot } from '../demo/repo-root.js';
import { benchCluster, REPLICAS } from './cluster.js';
import { ratio, stats, type Stats } from './stats.js';
import type { Benchmark, Figure, FigureSpec } from './types.js';

const FIGURE: FigureSpec = { name: 'agent idle RSS', unit: 'MB', what: 'VmRSS of each shoal-agent of an idle, settled 3-instance replica set; baseline: a bare idle `node`' };
const WEBHOOK: FigureSpec = { name: 'webhook idle RSS', unit: 'MB', what: 'VmRSS of a shoal-webhook process (bin/shoal-webhook.js, no cluster access) after one admission-free idle window; baseline: a bare idle `node`' };
const CPU: FigureSpec = { name: 'agent idle CPU', unit: '%', what: 'user+system CPU of each shoal-agent over the idle window, in % of one core' };
const RS = 'fo'; // the failover benchmark's set, measured before it is disturbed
const BARE_RUNS = 3;

interface ProcStatus {
  rssMB: number;
  anonMB: number;
  fileMB: number;
}

async function procStatus(pid: number): Promise<ProcStatus> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const mb = (key: string): number => {
    const kb = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1];
    if (!kb) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(kb) / 1024;
  };
  return { rssMB: mb('VmRSS'), anonMB: mb('RssAnon'), fileMB: mb('RssFile') };
}

/** utime + stime of a process, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start after the last ')'; utime, stime are fields 14, 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** The node flags a process runs with (its argv between the executable and the script). */
async function nodeFlags(pid: number): Promise<string> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  return argv.slice(1).filter((a) => a.startsWith('--')).join(' ') || 'no flags';
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Starts a node process, waits `settleMs` (or for `ready` on stdout first), samples it, stops it. */
async function sampleProcess(args: string[], settleMs: number, signal: AbortSignal, ready?: RegExp): Promise<ProcStatus> {
  const env = { ...process.env };
  delete env.KUBERNETES_SERVICE_HOST; // the webhook must not look for an in-cluster API server
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  try {
    if (ready) {
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready within 30 s: ${seen.slice(-300)}`)), 30_000);
        const onData = (b: Buffer): void => {
          seen += b.toString();
          if (ready.test(seen)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout?.on('data', onData);
        child.stderr?.on('data', onData);
        child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${String(code)}: ${seen.slice(-300)}`)));
      });
    }
    child.stdout?.resume();
    child.stderr?.resume();
    await sleep(settleMs, undefined, { signal });
    if (child.pid === undefined) throw new Error(`${args.join(' ')} did not start`);
    return await procStatus(child.pid);
  } finally {
    child.kill('SIGKILL');
  }
}

const withBaseline = (figure: FigureSpec, s: Stats, bare: Stats, note: string): Figure => ({
  ...figure,
  status: 'measured',
  ...s,
  baseline: { name: 'bare idle node', ...bare },
  ratio: { median: ratio(s.median, bare.median) },
  note,
});

const split = (xs: readonly ProcStatus[]): string => xs.map((x) => `${round1(x.rssMB)} (anon ${round1(x.anonMB)}, file ${round1(x.fileMB)})`).join(', ');

export const agentIdleRssBenchmark: Benchmark = {
  name: 'agent idle RSS',
  figures: [FIGURE, CPU, WEBHOOK],
  budgetMs: { quick: 300_000, full: 300_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    await c.replicaSet(RS, ctx.signal);
    const idleMs = ctx.quick ? 5_000 : 10_000;
    const pids: number[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const pid = c.stack.cluster.podInfo(c.namespace, `${RS}-${i}`)?.pids[AGENT_CONTAINER];
      if (pid) pids.push(pid);
    }
    if (pids.length === 0) throw new Error('no agent process found');
    const cpu0 = await Promise.all(pids.map(cpuSeconds));
    const t0 = performance.now();
    await sleep(idleMs, undefined, { signal: ctx.signal });
    const cpu1 = await Promise.all(pids.map(cpuSeconds));
    const wallS = (performance.now() - t0) / 1000;
    const agents = await Promise.all(pids.map(procStatus));
    const flags = await nodeFlags(pids[0] ?? 0);

    // The baselines after the agents' sample, one process at a time, so they do not compete with it.
    const bare: ProcStatus[] = [];
    for (let i = 0; i < BARE_RUNS; i++) bare.push(await sampleProcess(['-e', 'setInterval(() => {}, 1 << 30)'], idleMs, ctx.signal));
    const certDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-webhook-'));
    let webhook: ProcStatus;
    try {
      const args = [path.join(repoRoot(), 'bin', 'shoal-webhook.js'), '--port', '0', '--host', '127.0.0.1', '--cert-dir', certDir];
      webhook = await sampleProcess(args, idleMs, ctx.signal, /shoal-webhook serving/);
    } finally {
      await rm(certDir, { recursive: true, force: true });
    }

    const bareStats = stats(bare.map((b) => b.rssMB));
    const cpuPct = pids.map((_, i) => (((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / wallS) * 100);
    return [
      withBaseline(
        FIGURE,
        stats(agents.map((a) => a.rssMB)),
        bareStats,
        `one sample per agent (${agents.length} agents, Node ${process.version}, ${flags}); the coordinator is one of them; MB: ${split(agents)}; bare node: ${split(bare)} (file = pages of the node binary and libraries, shared)`,
      ),
      { ...CPU, status: 'measured', ...stats(cpuPct.map(round1)), note: `over ${wallS.toFixed(1)} s idle, rounds every 300 ms on the coordinator` },
      withBaseline(WEBHOOK, stats([webhook.rssMB]), bareStats, `one process; MB: ${split([webhook])}`),
    ];
  },
};
