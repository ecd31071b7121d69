// While this agent is not coordinating, it observes on the coordinator's cadence from the heartbeats
// it hears anyway (full mesh), so that if it takes over it knows how long a symptom has already
// lasted instead of restarting the failover clock. The rule on what counts lives in observe.ts.
import type { KnownMembers } from './observation.js';

export interface FollowerOptions {
  observe: (members: KnownMembers, now: number) => void;
  /** While true the coordinator's rounds observe; the follower stays out of their way. */
  coordinating: () => boolean;
  members: () => KnownMembers;
  intervalMs: number;
}

/** Observes every `intervalMs` until `signal` aborts. */
export function followSymptoms(o: FollowerOptions, signal: AbortSignal): void {
  if (signal.aborted) return;
  // Date.now, as the coordinator's rounds: the memory is compared with their time.
  const timer = setInterval(() => {
    if (!o.coordinating()) o.observe(o.members(), Date.now());
  }, o.intervalMs);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
