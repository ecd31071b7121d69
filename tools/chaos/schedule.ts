// The chaos schedule: which fault at which second, drawn from a seeded PRNG so a run is
// reproducible from its seed (printed at start). Pure: no I/O.

export type FaultKind =
  | 'kill-master-tarantool'
  | 'kill-replica-tarantool'
  | 'kill-coordinator-agent'
  | 'delete-pod'
  | 'partition'
  | 'partition-oneway'
  | 'mesh-cut'
  | 'freeze-agent'
  | 'api-down'
  | 'api-flaky';

/**
 * Every kind, equally likely. The last three of the network/process kinds make the shapes the
 * fencing rules are about: `partition-oneway` (a pod's frames lost while it still hears its peers,
 * or the reverse), `mesh-cut` (only the agent port: Tarantool replication still flows) and
 * `freeze-agent` (the master's agent SIGSTOPped, its Tarantool running on).
 */
export const FAULT_KINDS: readonly FaultKind[] = [
  'kill-master-tarantool',
  'kill-replica-tarantool',
  'kill-coordinator-agent',
  'delete-pod',
  'partition',
  'partition-oneway',
  'mesh-cut',
  'freeze-agent',
  'api-down',
  'api-flaky',
];

/** The fault kinds that hit the master most of the time (pick < MASTER_SHARE), another pod otherwise. */
export const MASTER_SHARE = 0.75;

export interface ScheduledFault {
  /** Seconds after the chaos starts (a fault starts no earlier than this, after the previous one ended). */
  atS: number;
  kind: FaultKind;
  /**
   * In [0, 1): picks the pod among the candidates when the fault runs (who is master is known only
   * then); for api-flaky, the seed of the proxy's fault draws.
   */
  pick: number;
  /** Partition / freeze / API-server outage / flaky API window length; 0 for instant faults. */
  durationS: number;
  /** partition-oneway only: true = what reaches the pod is dropped (it does not hear its peers; they hear it). */
  reverse?: boolean;
}

/** Window lengths in seconds per kind: [min, max]; kinds without one are instant. */
export const FAULT_DURATION_S: Partial<Record<FaultKind, readonly [number, number]>> = {
  partition: [3, 8],
  'partition-oneway': [3, 10],
  'mesh-cut': [3, 10],
  // Around the 5 s failover timeout (SHOAL_FAILOVER_TIMEOUT_MS): shorter freezes must cost nothing, longer ones a failover.
  'freeze-agent': [2, 10],
  'api-down': [5, 15],
  'api-flaky': [8, 20],
};

/** mulberry32: small, fast, good enough to spread faults; the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ScheduleOptions {
  seed: number;
  /** Faults start within this many seconds. */
  durationS: number;
  /** Quiet time between the end of one fault and the next: uniform in [min, max] seconds. */
  gapS?: [number, number];
}

export function chaosSchedule(o: ScheduleOptions): ScheduledFault[] {
  const rnd = prng(o.seed);
  const [gMin, gMax] = o.gapS ?? [6, 15];
  const out: ScheduledFault[] = [];
  let t = gMin;
  while (t < o.durationS) {
    const kind = FAULT_KINDS[Math.floor(rnd() * FAULT_KINDS.length)] ?? 'partition';
    const range = FAULT_DURATION_S[kind];
    const durationS = range ? range[0] + Math.round(rnd() * (range[1] - range[0])) : 0;
    const f: ScheduledFault = { atS: Math.round(t * 10) / 10, kind, pick: rnd(), durationS };
    if (kind === 'partition-oneway') f.reverse = rnd() < 0.5;
    out.push(f);
    t += durationS + gMin + rnd() * (gMax - gMin);
  }
  return out;
}

export function describeSchedule(s: readonly ScheduledFault[]): string {
  return s.map((f) => `  t+${f.atS.toFixed(1).padStart(6)} s  ${f.kind}${f.reverse === undefined ? '' : f.reverse ? ' (in: the pod stops hearing)' : ' (out: the pod stops being heard)'}${f.durationS ? ` for ${f.durationS} s` : ''} (pick ${f.pick.toFixed(3)})`).join('\n');
}
