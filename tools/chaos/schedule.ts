// The chaos schedule: which fault at which second, drawn from a seeded PRNG so a run is
// reproducible from its seed (printed at start). Pure: no I/O.

export type FaultKind = 'kill-master-tarantool' | 'kill-replica-tarantool' | 'kill-coordinator-agent' | 'delete-pod' | 'partition' | 'api-down' | 'api-flaky';

export const FAULT_KINDS: readonly FaultKind[] = ['kill-master-tarantool', 'kill-replica-tarantool', 'kill-coordinator-agent', 'delete-pod', 'partition', 'api-down', 'api-flaky'];

export interface ScheduledFault {
  /** Seconds after the chaos starts (a fault starts no earlier than this, after the previous one ended). */
  atS: number;
  kind: FaultKind;
  /**
   * In [0, 1): picks the pod among the candidates when the fault runs (who is master is known only
   * then); for api-flaky, the seed of the proxy's fault draws.
   */
  pick: number;
  /** Partition / API-server outage / flaky API window length; 0 for instant faults. */
  durationS: number;
}

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
    const durationS = kind === 'partition' ? 3 + Math.round(rnd() * 5) : kind === 'api-down' ? 5 + Math.round(rnd() * 10) : kind === 'api-flaky' ? 8 + Math.round(rnd() * 12) : 0;
    out.push({ atS: Math.round(t * 10) / 10, kind, pick: rnd(), durationS });
    t += durationS + gMin + rnd() * (gMax - gMin);
  }
  return out;
}

export function describeSchedule(s: readonly ScheduledFault[]): string {
  return s.map((f) => `  t+${f.atS.toFixed(1).padStart(6)} s  ${f.kind}${f.durationS ? ` for ${f.durationS} s` : ''} (pick ${f.pick.toFixed(3)})`).join('\n');
}
