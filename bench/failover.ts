// Failover time (SPEC §7): under a write load on an is_sync space, SIGKILL the master's Tarantool
// and time until the first write acknowledged by another instance (any writer of the standard mix:
// paced, unpaced, concurrent — tools/write-mix.ts). Runs one after the other on
// one 3-instance replica set, each after the set has settled again (old master back as replica).
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_FAILOVER_TIMEOUT_MS } from '../agent/decide/timings.js';
import { errorMessage } from '../common/errors.js';
import { waitFor } from '../tools/kube.js';
import { nowMs, startObservedLoad } from '../tools/observed-load.js';
import { writeTimelineSvg } from '../tools/timeline-svg.js';
import { firstAcknowledgedAfter } from '../tools/workload.js';
import { describeLoads } from '../tools/write-mix.js';
import { benchCluster, checkAcknowledged, KEY_REGIONS, REPLICAS } from './cluster.js';
import { stats } from './stats.js';
import type { Benchmark, Figure, FigureSpec } from './types.js';

export const RS = 'fo';
const FIGURE: FigureSpec = { name: 'failover time', unit: 's', what: "SIGKILL of the master's Tarantool → first acknowledged write on the (new) master (is_sync space; a paced, an unpaced and 4 concurrent writers)" };
export const FAILOVER_SVG = path.resolve('bench/failover.svg');

export const failoverBenchmark: Benchmark = {
  name: 'failover',
  figures: [FIGURE],
  budgetMs: { quick: 240_000, full: 360_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    await c.replicaSet(RS, ctx.signal);
    const runs = ctx.quick ? 2 : 5;
    const times: number[] = [];
    const problems: string[] = [];
    // Tarantool restarted by the kubelet faster than the failover timeout comes back as the master.
    let inPlace = 0;
    let loads = '';
    const obs = startObservedLoad({ stateFile: c.stack.cluster.stateFile, namespace: c.namespace, replicaset: RS, replicas: REPLICAS, firstKey: KEY_REGIONS.failover, signal: ctx.signal });
    try {
      for (let i = 1; i <= runs && !ctx.signal.aborted; i++) {
        const master = await c.replicaSet(RS, ctx.signal);
        await sleep(2_000, undefined, { signal: ctx.signal }); // steady writes before the kill
        const pid = c.stack.cluster.podInfo(c.namespace, master)?.pids['tarantool'];
        if (!pid) throw new Error(`no Tarantool process known for ${master}`);
        const killedAt = nowMs();
        process.kill(pid, 'SIGKILL');
        obs.mark('kill', `SIGKILL ${master} tarantool`);
        try {
          const ack = await waitFor(
            `a write acknowledged after the kill`,
            () => firstAcknowledgedAfter(obs.mix.logs(), killedAt),
            { timeoutMs: 60_000, intervalMs: 50, signal: ctx.signal },
          );
          const s = (ack.endedAt - killedAt) / 1000;
          times.push(s);
          if (ack.target === master) inPlace++;
          ctx.log(`failover run ${i}/${runs}: ${master} killed → ${ack.target ?? '?'} acknowledged after ${s.toFixed(2)} s`);
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          problems.push(`run ${i}: ${errorMessage(err)}`);
        }
      }
    } finally {
      const r = await obs.stop();
      loads = describeLoads(r.summary.loads);
      await writeTimelineSvg(FAILOVER_SVG, { title: `Failover: SIGKILL of the master's Tarantool, ${times.length} runs (acknowledged writes per 100 ms, all writers)`, timeline: r.summary.timeline, events: r.events }).catch((err: unknown) =>
        ctx.log(`failover: timeline not drawn: ${errorMessage(err)}`),
      );
      if (r.dualWritable.length) problems.push(`${r.dualWritable.length} samples saw two writable instances`);
      if (!ctx.signal.aborted) {
        const lost = await checkAcknowledged(c, RS, obs.mix.logs(), 'failover', ctx.signal);
        ctx.log(`failover: ${r.summary.acknowledged} acknowledged writes, ${lost} lost; ${loads}; timeline ${FAILOVER_SVG}`);
      }
    }
    if (times.length === 0) throw new Error(`no failover measured: ${problems.join('; ')}`);
    const f: Figure = { ...FIGURE, status: 'measured', ...stats(times) };
    const note = [
      `in ${inPlace} of ${times.length} runs the killed master's Tarantool, restarted by the kubelet, was back and writable before the failover timeout (${DEFAULT_FAILOVER_TIMEOUT_MS} ms) and kept the role${inPlace < times.length ? `; in the other ${times.length - inPlace} a replica was promoted` : ''}`,
      `write loads over the runs: ${loads}`,
      ...problems,
    ].join('; ');
    return [{ ...f, note }];
  },
};
