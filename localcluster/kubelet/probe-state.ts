import type { V1Probe } from '@kubernetes/client-node';

// The kubelet's probe result bookkeeping: a probe's result only flips after `successThreshold`
// (resp. `failureThreshold`) consecutive outcomes the other way.

export type ProbeKind = 'readiness' | 'liveness' | 'startup';
export type ProbeResult = 'success' | 'failure' | 'unknown';

export interface ProbeTracker {
  result: ProbeResult;
  /** The last outcome seen and how many times in a row. */
  last: 'success' | 'failure' | null;
  run: number;
}

/** Where the kubelet starts: readiness false, liveness true, startup unknown. */
export function initialTracker(kind: ProbeKind): ProbeTracker {
  const result: ProbeResult = kind === 'readiness' ? 'failure' : kind === 'liveness' ? 'success' : 'unknown';
  return { result, last: null, run: 0 };
}

export interface ProbeTiming {
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

/** A probe's timing with Kubernetes' defaults (period 10 s, timeout 1 s, thresholds 1 and 3). */
export function probeTiming(probe: V1Probe): ProbeTiming {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: Math.max(1, probe.periodSeconds ?? 10) * 1000,
    timeoutMs: Math.max(1, probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: Math.max(1, probe.successThreshold ?? 1),
    failureThreshold: Math.max(1, probe.failureThreshold ?? 3),
  };
}

export function observe(t: ProbeTracker, outcome: 'success' | 'failure', timing: ProbeTiming): ProbeTracker {
  const run = t.last === outcome ? t.run + 1 : 1;
  const threshold = outcome === 'success' ? timing.successThreshold : timing.failureThreshold;
  const result = run >= threshold ? outcome : t.result;
  return { result, last: outcome, run };
}
