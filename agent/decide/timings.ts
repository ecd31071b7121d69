import { ShoalError } from '../../common/errors.js';
import type { PlannedAction, Timings } from './model.js';

/**
 * The one default of SHOAL_FAILOVER_TIMEOUT_MS (agent/config.ts uses it too): seconds, not tens of
 * seconds (Cartridge: 20 s, Patroni: 30 s), yet long enough that a heartbeat blip on a busy node is
 * not a failover. With the defaults below a cut-off master fences itself after 2.9 s.
 */
export const DEFAULT_FAILOVER_TIMEOUT_MS = 5000;

/** What an operator may configure (agent/config.ts); unset = the default. */
export interface ConfiguredTimings {
  failoverTimeoutMs?: number | undefined;
  heartbeatTimeoutMs?: number | undefined;
  coordinatorIntervalMs?: number | undefined;
  catchUpTimeoutMs?: number | undefined;
  switchoverTimeoutMs?: number | undefined;
}

/**
 * The one mapping from configured to derived timings, checked (throws a ShoalError naming the
 * variable to change when the relations cannot hold). The Lease's are its own (lease/timing.ts).
 */
export function deriveTimings(c: ConfiguredTimings = {}): Timings {
  const heartbeatTimeoutMs = c.heartbeatTimeoutMs ?? 1000;
  const fenceApplyMs = 250;
  return validateTimings({
    failoverTimeoutMs: c.failoverTimeoutMs ?? DEFAULT_FAILOVER_TIMEOUT_MS,
    heartbeatTimeoutMs,
    fenceApplyMs,
    agentTickMs: 100,
    catchUpTimeoutMs: c.catchUpTimeoutMs ?? 5000,
    maxHealthyLagMs: 1000,
    rebootstrapRetryMs: 60_000,
    podRestartTimeoutMs: 300_000,
    // Several heartbeats per timeout, so one late frame is not a lost peer.
    heartbeatIntervalMs: Math.min(250, Math.max(20, Math.floor(heartbeatTimeoutMs / 4))),
    coordinatorIntervalMs: c.coordinatorIntervalMs ?? 300,
    switchoverTimeoutMs: c.switchoverTimeoutMs ?? 30_000,
    fenceBudgetMs: Math.max(2_000, 8 * fenceApplyMs),
    promoteBudgetMs: 30_000,
    joinBudgetMs: 90_000,
    rebootstrapBudgetMs: 120_000,
    commandBudgetMs: 15_000,
  });
}

/** How long the agent may work on a planned action; null for what no agent carries out. */
export function budgetMs(action: PlannedAction, t: Timings): number | null {
  switch (action.kind) {
    case 'persist':
    case 'event':
    case 'deletePod':
      return null;
    case 'fence':
      return t.fenceBudgetMs;
    case 'waitCatchUp':
      return t.catchUpTimeoutMs;
    case 'promote':
      return t.promoteBudgetMs;
    case 'bootstrapMaster':
    case 'joinReplica':
      return t.joinBudgetMs;
    case 'rebootstrap':
      return t.rebootstrapBudgetMs;
    default:
      return t.commandBudgetMs;
  }
}

/**
 * How much earlier than the failover timeout a cut-off master must be read-only.
 *
 * A partition at time P is noticed by its peers at P + dp, dp in [0, heartbeatTimeout]; promotion
 * comes no earlier than P + dp + failoverTimeout. The master counts only peers that also hear it
 * (their heartbeats say so), so in a one-way partition — its frames lost, theirs arriving — it
 * learns of the loss from the first heartbeat sent after a peer stopped hearing it: dm is within
 * heartbeatTimeout + heartbeatInterval. It is read-only by P + dm + selfFenceAfter + agentTick +
 * fenceApply (+ scheduling slack). The worst case dm = heartbeatTimeout + heartbeatInterval, dp = 0
 * gives the margin below.
 */
export function safetyMarginMs(t: Timings): number {
  const schedulingSlackMs = Math.ceil(t.failoverTimeoutMs / 10); // GC pauses, event-loop delays
  return t.heartbeatTimeoutMs + t.heartbeatIntervalMs + t.fenceApplyMs + t.agentTickMs + schedulingSlackMs;
}

/**
 * How long a master may be without a mesh majority before it makes itself read-only. Derived from
 * the failover timeout so the relation selfFence + margin <= failover holds by construction.
 */
export function fenceDeadline(t: Timings): number {
  return validateTimings(t).failoverTimeoutMs - safetyMarginMs(t);
}

/** Returns `t` when it is usable; throws with the fix otherwise. */
export function validateTimings(t: Timings): Timings {
  for (const [name, value] of Object.entries(t)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ShoalError(`timing ${name} must be a positive number of milliseconds, got ${String(value)}`);
    }
  }
  const selfFenceAfterMs = t.failoverTimeoutMs - safetyMarginMs(t);
  if (selfFenceAfterMs < t.agentTickMs) {
    const needed = Math.ceil((t.heartbeatTimeoutMs + t.heartbeatIntervalMs + t.fenceApplyMs + 2 * t.agentTickMs + 1) / 0.9) + 1;
    throw new ShoalError(
      `failover timeout ${t.failoverTimeoutMs} ms leaves no time for a cut-off master to fence itself first ` +
        `(heartbeat ${t.heartbeatTimeoutMs} ms + heartbeat interval ${t.heartbeatIntervalMs} ms + fence ${t.fenceApplyMs} ms + tick ${t.agentTickMs} ms + 10% slack)`,
      `raise SHOAL_FAILOVER_TIMEOUT_MS to at least ${needed} or lower the heartbeat timeout`,
    );
  }
  return t;
}

export const DEFAULT_TIMINGS: Timings = deriveTimings();
