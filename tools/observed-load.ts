// A write mix (write-mix.ts: by default a paced, an unpaced and a concurrent load) on a replica
// set's is_sync space together with a sampler of every instance's box.info and a list of timeline events: what the failover and rollout benchmarks and the chaos
// runner all run while they break things. Pods are found through the kubelet's state file, so the
// load and the sampler keep working while the API server is down.
import { instanceTransitions, type EventKind, type TimelineEvent } from './events.js';
import { startSampler, type Sample } from './sampler.js';
import { localMasterTarget, localPods } from './shoal-cluster.js';
import { startWriteMix, type LoadSpec, type MixSummary, type WriteMix } from './write-mix.js';

export interface ObservedLoadOptions {
  stateFile: string;
  namespace: string;
  replicaset: string;
  replicas: number;
  /** The loads. Default STANDARD_LOADS (paced, unpaced, concurrent). */
  loads?: readonly LoadSpec[];
  /** Sampler interval. Default 250 ms. */
  sampleMs?: number;
  /** The mix's key ranges start here (each mix on one space needs its own: see mixKeySpan). */
  firstKey: number;
  signal?: AbortSignal;
  /** Gets among the writes (see WriteMixOptions.readShare). Default none. */
  readShare?: number;
}

export interface ObservedLoad {
  readonly mix: WriteMix;
  /** Marks something done to the cluster (now, on the load's clock). */
  mark(kind: EventKind, label: string): void;
  stop(): Promise<{ summary: MixSummary; samples: Sample[]; events: TimelineEvent[]; dualWritable: Sample[] }>;
}

export const nowMs = (): number => performance.timeOrigin + performance.now();

export function startObservedLoad(o: ObservedLoadOptions): ObservedLoad {
  const marks: TimelineEvent[] = [];
  const mix = startWriteMix({
    target: localMasterTarget(o.stateFile, o.namespace, o.replicaset, o.replicas),
    space: 'load',
    ...(o.loads ? { loads: o.loads } : {}),
    firstKey: o.firstKey,
    writeTimeoutMs: 5_000,
    ...(o.readShare ? { readShare: o.readShare } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const sampler = startSampler({
    instances: async () => localPods(o.stateFile, o.namespace, o.replicaset, o.replicas).map((p) => ({ name: p.pod, console: p.console })),
    intervalMs: o.sampleMs ?? 250,
    probeTimeoutMs: 1_000,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return {
    mix,
    mark: (kind, label) => void marks.push({ at: nowMs(), kind, label }),
    async stop() {
      const [summary, samples] = await Promise.all([mix.stop(), sampler.stop()]);
      const events = [...marks, ...instanceTransitions(samples)].sort((a, b) => a.at - b.at);
      return { summary, samples, events, dualWritable: samples.filter((s) => s.writable.length >= 2) };
    },
  };
}
