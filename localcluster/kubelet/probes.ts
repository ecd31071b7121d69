import type { V1Probe } from '@kubernetes/client-node';
import { runHandler, type Handler, type HandlerTarget } from './actions.js';
import type { ContainerRun } from './lifecycle.js';
import { probeTiming, type ProbeKind, type ProbeResult, type ProbeTiming } from './probe-state.js';
import { sleep } from '../../common/time.js';

// A container's probes as the kubelet runs them: each kind on its own period, liveness and
// readiness held back until the startup probe succeeded; a changed result changes the container.

export interface ProbeLoopHooks {
  /** The container's run now (the loop reads `started`). */
  run: () => ContainerRun | undefined;
  target: () => HandlerTarget;
  onResult: (outcome: 'success' | 'failure', message: string, timing: ProbeTiming) => void;
}

/** Probes until `signal` aborts (the container stopped), or, for a startup probe, until it succeeded. */
export async function probeLoop(kind: ProbeKind, probe: V1Probe, signal: AbortSignal, hooks: ProbeLoopHooks): Promise<void> {
  const timing = probeTiming(probe);
  await sleep(timing.initialDelayMs, signal).catch(() => undefined); // aborted: the loop's test ends it
  while (!signal.aborted) {
    const run = hooks.run();
    const waitForStartup = kind !== 'startup' && run !== undefined && !run.started;
    if (!waitForStartup) {
      const outcome = await runHandler(probe as Handler, hooks.target(), timing.timeoutMs);
      if (signal.aborted) return;
      hooks.onResult(outcome.ok ? 'success' : 'failure', outcome.message, timing);
      if (kind === 'startup' && hooks.run()?.started) return;
    }
    await sleep(timing.periodMs, signal).catch(() => undefined);
  }
}

/**
 * What a changed probe result does: readiness sets `ready`; a startup success marks the container
 * started (and ready unless a readiness probe decides); any other failure kills the container.
 */
export function probeEffect(kind: ProbeKind, result: ProbeResult, run: ContainerRun, hasReadiness: boolean): { run?: ContainerRun; kill: boolean } {
  if (kind === 'readiness') return { run: { ...run, ready: result === 'success' }, kill: false };
  if (kind === 'startup' && result === 'success') return { run: { ...run, started: true, ready: hasReadiness ? run.ready : true }, kill: false };
  return { kill: result === 'failure' };
}
