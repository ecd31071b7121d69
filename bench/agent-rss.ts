// Agent idle RSS (SPEC §7): VmRSS of the three shoal-agent processes of a settled 3-instance
// replica set, read from /proc after a few idle seconds (the kubelet runs them on this machine).
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_CONTAINER } from '../common/names.js';
import { benchCluster, REPLICAS } from './cluster.js';
import { stats } from './stats.js';
import type { Benchmark, FigureSpec } from './types.js';

const FIGURE: FigureSpec = { name: 'agent idle RSS', unit: 'MB', what: 'VmRSS of each shoal-agent of an idle, settled 3-instance replica set' };
const RS = 'fo'; // the failover benchmark's set, measured before it is disturbed

async function vmRssMB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

export const agentIdleRssBenchmark: Benchmark = {
  name: 'agent idle RSS',
  figures: [FIGURE],
  budgetMs: { quick: 300_000, full: 300_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    await c.replicaSet(RS, ctx.signal);
    await sleep(ctx.quick ? 5_000 : 10_000, undefined, { signal: ctx.signal });
    const mbs: number[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const pid = c.stack.cluster.podInfo(c.namespace, `${RS}-${i}`)?.pids[AGENT_CONTAINER];
      if (pid) mbs.push(await vmRssMB(pid));
    }
    if (mbs.length === 0) throw new Error('no agent process found');
    return [{ ...FIGURE, status: 'measured', ...stats(mbs), note: `one sample per agent (${mbs.length} agents, Node ${process.version}); the coordinator is one of them` }];
  },
};
