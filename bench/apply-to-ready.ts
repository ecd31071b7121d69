// Apply to ready (SPEC §7): create what a user applies for a 3-replica StatefulSet (ConfigMap,
// headless Service, StatefulSet) and time until every pod is Ready (the agent's readiness: the
// instance configured in its replica set). Each run uses a fresh set, deleted afterwards.
import { condition, waitFor } from '../tools/kube.js';
import { deployReplicaSet } from '../tools/shoal-cluster.js';
import { benchCluster, CLUSTER, REPLICAS } from './cluster.js';
import { stats } from './stats.js';
import type { Benchmark, FigureSpec } from './types.js';

const FIGURE: FigureSpec = { name: 'apply to all pods ready', unit: 's', what: 'creating a 3-replica StatefulSet (+ ConfigMap, headless Service) → every pod Ready' };

export const applyToReadyBenchmark: Benchmark = {
  name: 'apply to ready',
  figures: [FIGURE],
  budgetMs: { quick: 240_000, full: 300_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    const { k, namespace } = c;
    const runs = ctx.quick ? 1 : 3;
    const times: number[] = [];
    for (let i = 1; i <= runs; i++) {
      const name = `ar${i}`;
      const t0 = performance.now();
      await deployReplicaSet(k, { namespace, cluster: `${CLUSTER}-ar${i}`, name, replicas: REPLICAS, ...c.spec });
      await waitFor(
        `${name}: ${REPLICAS} pods Ready`,
        async () => {
          const pods = (await k.in(namespace).pods.list({ labelSelector: `app=${name}` })).items;
          return pods.length === REPLICAS && pods.every((p) => condition(p, 'Ready') === 'True');
        },
        { timeoutMs: 240_000, intervalMs: 100, signal: ctx.signal },
      );
      const s = (performance.now() - t0) / 1000;
      times.push(s);
      ctx.log(`apply to ready run ${i}/${runs}: ${s.toFixed(2)} s`);
      // Out of the way of the next run and of the benchmarks after this one.
      await k.in(namespace).statefulSets.delete(name);
      await waitFor(`${name}'s pods gone`, async () => (await k.in(namespace).pods.list({ labelSelector: `app=${name}` })).items.length === 0, {
        timeoutMs: 120_000,
        intervalMs: 500,
        signal: ctx.signal,
      });
    }
    return [{ ...FIGURE, status: 'measured', ...stats(times), note: 'each set is its own Shoal cluster (first-time bootstrap: coordinator election, replica set formed)' }];
  },
};
