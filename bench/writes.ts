// Steady synchronous writes (no fault): each load of the standard mix (tools/write-mix.ts) alone
// for a while on the settled 3-instance set — a paced writer (one write per 50 ms), an unpaced
// one-at-a-time writer and 4 concurrent unpaced writers — reporting writes/s and the longest gap a
// writer saw. The unpaced writer is what a single client does; it is the load that shows 2.6.0's
// 5 s synchro stalls (20 paced writes a second never hit them). Every acknowledged write is then
// looked for on every instance (the "lost writes" tally).
import { setTimeout as sleep } from 'node:timers/promises';
import { localMasterTarget } from '../tools/shoal-cluster.js';
import { describeLoads, mixKeySpan, STANDARD_LOADS, startWriteMix, type LoadSpec } from '../tools/write-mix.js';
import { benchCluster, checkAcknowledged, KEY_REGIONS, REPLICAS } from './cluster.js';
import { RS } from './failover.js';
import { stats } from './stats.js';
import type { Benchmark, Figure, FigureSpec } from './types.js';

function how(l: LoadSpec): string {
  return l.intervalMs > 0 ? `${l.writers} writer(s), one write per ${l.intervalMs} ms each` : `${l.writers} unpaced writer(s), each one write at a time`;
}

/** The figures of one load: declared up front so that a failed run still names them. */
export function writeFigures(l: LoadSpec): { rate: FigureSpec; gap: FigureSpec } {
  return {
    rate: { name: `sync writes/s, ${l.name}`, unit: 'writes/s', what: `acknowledged writes per second into an is_sync space through the master's console, no fault (${how(l)})` },
    gap: { name: `longest write gap, ${l.name}`, unit: 'ms', what: `the longest time one writer of the load waited between acknowledgements, no fault (${how(l)})` },
  };
}

export const writesBenchmark: Benchmark = {
  name: 'writes',
  figures: STANDARD_LOADS.flatMap((l) => Object.values(writeFigures(l))),
  budgetMs: { quick: 240_000, full: 360_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    const seconds = ctx.quick ? 10 : 30;
    const figures: Figure[] = [];
    let key = KEY_REGIONS.writes;
    for (const l of STANDARD_LOADS) {
      await c.replicaSet(RS, ctx.signal);
      const mix = startWriteMix({
        target: localMasterTarget(c.stack.cluster.stateFile, c.namespace, RS, REPLICAS),
        space: 'load',
        loads: [l],
        firstKey: key,
        writeTimeoutMs: 10_000,
        signal: ctx.signal,
      });
      key += mixKeySpan([l]);
      // Stopped whatever happens (an abort still propagates after the writers are stopped).
      const summary = await sleep(seconds * 1000, undefined, { signal: ctx.signal }).then(
        () => mix.stop(),
        async (err: unknown) => {
          await mix.stop();
          throw err;
        },
      );
      const s = summary.loads[0];
      if (!s) throw new Error(`load ${l.name}: no summary`);
      const lost = await checkAcknowledged(c, RS, mix.logs(), `writes ${l.name}`, ctx.signal);
      ctx.log(`writes, ${seconds} s: ${describeLoads(summary.loads)}; ${lost} lost`);
      const f = writeFigures(l);
      const errors = Object.entries(s.errors).map(([k, n]) => `${n} ${k}`).join(', ');
      const note = `${seconds} s, ${s.acknowledged} acknowledged, ${s.failed} failed${errors ? ` (${errors})` : ''}, ${s.gaps} gaps over ${s.gapThresholdMs} ms${lost ? `, ${lost} LOST` : ''}`;
      figures.push({ ...f.rate, status: 'measured', ...stats([s.writesPerS]), note });
      figures.push({ ...f.gap, status: 'measured', ...stats([s.longestGapMs]), note });
    }
    return figures;
  },
};
