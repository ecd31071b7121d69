// The agent's configured timings turned into the core's Timings (validated there: the self-fence
// deadline must come before the failover timeout) and the Lease's, with the defaults of the table in
// agent/config.ts.
import type { AgentTimings } from './config.js';
import type { Timings } from './decide/model.js';
import { deriveTimings } from './decide/timings.js';
import type { ElectionTimings } from './lease/timing.js';

export const CONTROL_DEFAULTS = {
  heartbeatTimeoutMs: 1_000,
  coordinatorIntervalMs: 300,
  catchUpTimeoutMs: 5_000,
  switchoverTimeoutMs: 30_000,
  /** How often heartbeats go out and the local probe polls Tarantool. */
  heartbeatIntervalMs: 250,
} as const;

export interface ControlTimings {
  core: Timings;
  lease: ElectionTimings;
  heartbeatIntervalMs: number;
  coordinatorIntervalMs: number;
  switchoverTimeoutMs: number;
}

/** Throws a ShoalError naming the variable to change when the relations cannot hold. */
export function controlTimings(t: AgentTimings): ControlTimings {
  const heartbeatTimeoutMs = t.heartbeatTimeoutMs ?? CONTROL_DEFAULTS.heartbeatTimeoutMs;
  const core = deriveTimings(t);
  const leaseDurationMs = t.leaseSeconds * 1000;
  return {
    core,
    // client-go's proportions (15 s / 10 s / 2 s), scaled to SHOAL_LEASE_SECONDS.
    lease: { leaseDurationMs, renewDeadlineMs: Math.round((leaseDurationMs * 2) / 3), retryPeriodMs: Math.round((leaseDurationMs * 2) / 15) },
    // Several heartbeats per timeout, so one late frame is not a lost peer.
    heartbeatIntervalMs: Math.min(CONTROL_DEFAULTS.heartbeatIntervalMs, Math.max(20, Math.floor(heartbeatTimeoutMs / 4))),
    coordinatorIntervalMs: t.coordinatorIntervalMs ?? CONTROL_DEFAULTS.coordinatorIntervalMs,
    switchoverTimeoutMs: t.switchoverTimeoutMs ?? CONTROL_DEFAULTS.switchoverTimeoutMs,
  };
}
