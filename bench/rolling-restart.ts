// Write gap during a full rolling restart (SPEC §7): a template change (an env var) of a
// 3-instance replica set under a write load, rolled out by Shoal (replicas first, switchover, then
// the old master); baseline: a restart in Kubernetes' RollingUpdate order (pods deleted highest
// ordinal first, each waited for Ready) with no template change, so Shoal's rollout planner has
// nothing to order, and the master restarted blindly, as RollingUpdate does: Shoal is paused
// (shoal.dev/paused) while the master's pod goes away with a 3 s grace period, so its preStop
// hook cannot hand over; once that pod is gone Shoal is resumed, because paused means no action
// at all and the recreated pod would otherwise never be configured. From then on Shoal's failover
// is the only safety net. The figure is the sum of the periods without a successful write of the
// paced writer (one per 50 ms, gaps over 100 ms: comparable with the figures measured before the
// mix); the unpaced and concurrent writers run beside it, their longest gaps in the note.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import { ANNOTATIONS } from '../common/names.js';
import { condition, waitFor, waitPodGone, type KubeClients } from '../tools/kube.js';
import { startObservedLoad } from '../tools/observed-load.js';
import { instancesOf } from '../tools/shoal-cluster.js';
import { writeTimelineSvg } from '../tools/timeline-svg.js';
import { describeLoads, mixKeySpan, PACED, STANDARD_LOADS, type LoadSummary } from '../tools/write-mix.js';
import { benchCluster, checkAcknowledged, REPLICAS, type BenchCluster } from './cluster.js';
import { ratio, stats } from './stats.js';
import type { Benchmark, Figure, FigureSpec } from './types.js';

const RS = 'rr';
const FIGURE: FigureSpec = {
  name: 'rolling restart write gap',
  unit: 's',
  what: 'seconds without a successful write of the paced writer (one per 50 ms, gaps > 100 ms; unpaced and concurrent writers beside it) during a full rolling restart of 3 instances (template env change); baseline: the 3 pods restarted in RollingUpdate order (highest ordinal first, the master without hand-over)',
};
const SETTLE_MS = 240_000;

/** Read-modify-replace with retries on conflicts (the agents and the webhook touch the object too). */
async function updateStatefulSet(k: KubeClients, namespace: string, name: string, change: (s: V1StatefulSet) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const sts = await k.in(namespace).statefulSets.get(name);
    change(sts);
    try {
      await k.in(namespace).statefulSets.replace(name, sts);
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
    }
  }
}

function setEnv(value: string): (s: V1StatefulSet) => void {
  return (s) => {
    const c = s.spec?.template.spec?.containers.find((x) => x.name === 'tarantool');
    if (!c) throw new Error('no tarantool container in the template');
    c.env = [...(c.env ?? []).filter((e) => e.name !== 'BENCH_ROUND'), { name: 'BENCH_ROUND', value }];
  };
}

/** Every pod of the set runs the StatefulSet's update revision and is Ready (a naive restart keeps the revision). */
async function rolledOut(k: KubeClients, namespace: string, signal: AbortSignal): Promise<void> {
  await waitFor(
    `${RS}: every pod on the update revision and Ready`,
    async () => {
      const sts = await k.in(namespace).statefulSets.get(RS);
      const rev = sts.status?.updateRevision;
      if (!rev || (sts.status?.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0)) return false;
      const pods = (await k.in(namespace).pods.list({ labelSelector: `app=${RS}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
      return pods.length === REPLICAS && pods.every((p) => p.metadata?.labels?.['controller-revision-hash'] === rev && condition(p, 'Ready') === 'True');
    },
    { timeoutMs: SETTLE_MS, intervalMs: 500, signal },
  );
}

function setPaused(paused: boolean): (s: V1StatefulSet) => void {
  return (s) => {
    s.metadata ??= {};
    s.metadata.annotations = { ...s.metadata.annotations, [ANNOTATIONS.paused]: String(paused) };
  };
}

interface Round {
  gapS: number;
  svg: string;
  loads: LoadSummary[];
}

async function round(c: BenchCluster, mode: 'shoal' | 'naive', n: number, firstKey: number, signal: AbortSignal, log: (m: string) => void): Promise<Round> {
  const { k, namespace } = c;
  await c.replicaSet(RS, signal);
  const obs = startObservedLoad({ stateFile: c.stack.cluster.stateFile, namespace, replicaset: RS, replicas: REPLICAS, firstKey, signal });
  const svg = path.resolve(`bench/rollout-${mode}.svg`);
  let result: Awaited<ReturnType<typeof obs.stop>>;
  try {
    await sleep(2_000, undefined, { signal });
    if (mode === 'shoal') {
      obs.mark('rollout', 'template changed');
      await updateStatefulSet(k, namespace, RS, setEnv(`${mode}-${n}-${Date.now()}`));
    } else {
      obs.mark('rollout', 'naive restart in StatefulSet order');
      for (let i = REPLICAS - 1; i >= 0; i--) {
        const pod = `${RS}-${i}`;
        const old = await k.in(namespace).pods.get(pod);
        const isMaster = (await instancesOf(k, namespace, RS)).some((x) => x.pod === pod && x.status.instance.role === 'master');
        if (isMaster) await updateStatefulSet(k, namespace, RS, setPaused(true));
        obs.mark('pod-delete', `delete ${pod}${isMaster ? ' (the master, blindly)' : ''}`);
        await k.in(namespace).pods.delete(pod, isMaster ? { gracePeriodSeconds: 3 } : undefined);
        await waitPodGone(k.client, namespace, pod, old.metadata?.uid ?? '', { timeoutMs: SETTLE_MS, signal });
        if (isMaster) await updateStatefulSet(k, namespace, RS, setPaused(false));
        await waitFor(`${pod} Ready again`, async () => condition(await k.in(namespace).pods.get(pod), 'Ready') === 'True', { timeoutMs: SETTLE_MS, intervalMs: 250, signal });
      }
    }
    await rolledOut(k, namespace, signal);
    await sleep(2_000, undefined, { signal }); // writes back to steady before the load stops
  } finally {
    // Stopped and drawn whatever happened above (an error there still propagates).
    const r = await obs.stop();
    result = r;
    const title = `Rolling restart of 3 instances, ${mode === 'shoal' ? 'by Shoal' : 'naive, StatefulSet order'} (acknowledged writes per 100 ms, all writers)`;
    await writeTimelineSvg(svg, { title, timeline: r.summary.timeline, events: r.events }).catch((err: unknown) => log(`timeline not drawn: ${errorMessage(err)}`));
  }
  const lost = await checkAcknowledged(c, RS, obs.mix.logs(), `rollout ${mode} ${n}`, signal);
  const paced = result.summary.loads.find((l) => l.name === PACED.name);
  if (!paced) throw new Error('the write mix ran no paced writer');
  const gapS = paced.unavailableMs / 1000;
  log(
    `rolling restart (${mode}) ${n}: ${gapS.toFixed(2)} s without paced writes, ${lost} lost, ${result.dualWritable.length} dual-writable samples; ` +
      describeLoads(result.summary.loads),
  );
  return { gapS, svg, loads: result.summary.loads };
}

export const rollingRestartBenchmark: Benchmark = {
  name: 'rolling restart',
  figures: [FIGURE],
  budgetMs: { quick: 300_000, full: 480_000 },
  async run(ctx) {
    const c = await benchCluster(ctx.log, ctx.signal, ctx.lane);
    const rounds = ctx.quick ? 1 : 2;
    const shoal: number[] = [];
    const naive: number[] = [];
    // The longest gap each load saw, per mode, over the rounds.
    const longest: Record<'shoal' | 'naive', Map<string, number>> = { shoal: new Map(), naive: new Map() };
    const keep = (mode: 'shoal' | 'naive', r: Round): number => {
      for (const l of r.loads) longest[mode].set(l.name, Math.max(longest[mode].get(l.name) ?? 0, l.longestGapMs));
      return r.gapS;
    };
    let key = 1;
    for (let n = 1; n <= rounds; n++) {
      shoal.push(keep('shoal', await round(c, 'shoal', n, key, ctx.signal, ctx.log)));
      key += mixKeySpan(STANDARD_LOADS);
      naive.push(keep('naive', await round(c, 'naive', n, key, ctx.signal, ctx.log)));
      key += mixKeySpan(STANDARD_LOADS);
    }
    const gaps = (mode: 'shoal' | 'naive'): string => [...longest[mode]].map(([name, ms]) => `${name} ${(ms / 1000).toFixed(2)} s`).join(', ');
    const s = stats(shoal);
    const b = stats(naive);
    const f: Figure = {
      ...FIGURE,
      status: 'measured',
      ...s,
      baseline: { name: 'naive StatefulSet-order restart', ...b },
      ...(b.median > 0 ? { ratio: { median: ratio(s.median, b.median) } } : {}),
      note: `timelines bench/rollout-shoal.svg, bench/rollout-naive.svg; longest write gap per load: by Shoal ${gaps('shoal')}; naive ${gaps('naive')}`,
    };
    return [f];
  },
};
