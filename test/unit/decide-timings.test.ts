import { describe, expect, it } from 'vitest';
import { stamp } from '../../agent/decide/batch.js';
import type { PlannedAction } from '../../agent/decide/model.js';
import { budgetMs, DEFAULT_TIMINGS as T, deriveTimings } from '../../agent/decide/timings.js';

const at = { replicaset: 's', pod: 's-1', reason: 'r' };
const config = { replication: ['a:1'], synchroQuorum: 2 };

describe('command budgets', () => {
  it.each<[PlannedAction, number | null]>([
    [{ kind: 'fence', ...at }, 2_000],
    [{ kind: 'waitCatchUp', source: 's-0', ...at }, 5_000],
    [{ kind: 'promote', ...at, ...config }, 30_000],
    [{ kind: 'bootstrapMaster', ...at, ...config }, 90_000],
    [{ kind: 'joinReplica', ...at, ...config }, 90_000],
    [{ kind: 'rebootstrap', ...at, ...config }, 120_000],
    [{ kind: 'reconfigure', ...at, ...config }, 15_000],
    [{ kind: 'restartReplication', ...at, ...config }, 15_000],
    [{ kind: 'rejoinAsReplica', ...at, ...config }, 15_000],
    [{ kind: 'expel', expelledPod: 's-3', expelledUuid: 'u', ...at }, 15_000],
    [{ kind: 'deletePod', uid: null, ...at }, null],
    [{ kind: 'event', replicaset: 's', eventType: 'Normal', eventReason: 'X', reason: 'r' }, null],
  ])('%o gets %s ms', (action, want) => {
    expect(budgetMs(action, T)).toBe(want);
    const stamped = stamp(action, 7, T);
    expect(stamped.term).toBe(7);
    expect('budgetMs' in stamped ? stamped.budgetMs : null).toBe(want);
  });

  it('follows the configured catch-up timeout and the fence bound', () => {
    expect(budgetMs({ kind: 'waitCatchUp', source: 's-0', ...at }, deriveTimings({ catchUpTimeoutMs: 9_000 }))).toBe(9_000);
    expect(budgetMs({ kind: 'fence', ...at }, { ...T, fenceBudgetMs: 4_000 })).toBe(4_000);
  });
});

describe('deriveTimings', () => {
  it('is the defaults when nothing is configured', () => {
    expect(deriveTimings()).toEqual(T);
    expect(T).toMatchObject({ failoverTimeoutMs: 5_000, heartbeatTimeoutMs: 1_000, heartbeatIntervalMs: 250, coordinatorIntervalMs: 300, switchoverTimeoutMs: 30_000 });
  });

  it.each([
    [{ heartbeatTimeoutMs: 400 }, { heartbeatTimeoutMs: 400, heartbeatIntervalMs: 100 }],
    [{ heartbeatTimeoutMs: 40 }, { heartbeatIntervalMs: 20 }],
    [{ coordinatorIntervalMs: 50, switchoverTimeoutMs: 5_000 }, { coordinatorIntervalMs: 50, switchoverTimeoutMs: 5_000 }],
    [{ failoverTimeoutMs: 10_000, heartbeatTimeoutMs: undefined }, { failoverTimeoutMs: 10_000, heartbeatTimeoutMs: 1_000 }],
  ])('maps %o', (configured, want) => {
    expect(deriveTimings(configured)).toMatchObject(want);
  });

  it('refuses a failover timeout that leaves a cut-off master no time to fence itself, naming the variable', () => {
    expect(() => deriveTimings({ failoverTimeoutMs: 1_000 })).toThrow(/failover timeout 1000 ms/);
  });
});
