// The real loop, one round at a time, with fakes at its adapters: what it carries out is what the
// core returned (rollout phase Events, the old master's rejoin after a hand-over), nothing of its own.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Coordinator } from '../../agent/coordinator/loop.js';
import { ControlMetrics } from '../../agent/coordinator/metrics.js';
import type { ObservedCluster, ObservedReplicaSet, PersistedState } from '../../agent/decide/model.js';
import type { Snapshot } from '../../agent/state/store.js';
import type { Ack } from '../../agent/wire/mesh-protocol.js';
import { cluster, formed, NOW, patch, persisted, T } from './decide-fixtures.js';

function harness(initial: PersistedState, world: () => ObservedReplicaSet) {
  let state = initial;
  const events: string[] = [];
  const sent: string[] = [];
  const snap = (): Snapshot<PersistedState> => ({ term: state.term, coordinator: state.coordinator ?? '', state, updatedAt: '', resourceVersion: '1' });
  const metrics = new ControlMetrics(new Registry());
  const logger = pino({ level: 'silent' });
  const ok: Ack = { type: 'ack', v: 1, id: 'x', ok: true, result: { at: NOW, detail: { vclock: { 1: 10 } } } };
  const coordinator = new Coordinator({
    self: 's-0',
    namespace: 'ns',
    cluster: 'c',
    store: {
      read: () => Promise.resolve(snap()),
      bumpTerm: (holder) => {
        state = { ...state, term: state.term + 1, coordinator: holder };
        return Promise.resolve(snap());
      },
    },
    observer: { observe: (): ObservedCluster => cluster(NOW, world()), roles: () => new Map(), beginTerm: () => '' },
    actions: {
      store: {
        update: (mutator) => {
          state = mutator(snap()) ?? state;
          return Promise.resolve(snap());
        },
      },
      send: (pod, req) => {
        sent.push(`${req.kind}:${pod}:${String(req.payload.timeoutMs)}`);
        return Promise.resolve(ok);
      },
      deletePod: () => Promise.resolve('deleted'),
      event: (_rs, type, reason, message) => events.push(`${type} ${reason}: ${message}`),
      acknowledged: () => undefined,
      metrics,
      logger,
    },
    mesh: { observeTerm: () => undefined, highestTerm: () => ({ term: 0 }), pushTopology: () => undefined },
    timings: T,
    metrics,
    logger,
    clock: () => NOW,
  });
  return { coordinator, events, sent, state: () => state };
}

const signal = new AbortController().signal;

describe('Coordinator rounds', () => {
  const { rs, state } = formed('s', 3);

  it('sends the rollout phase Events the core decides, against the phases of its own previous round', async () => {
    let world: ObservedReplicaSet = { ...rs, updateRevision: 'rev-2' };
    const h = harness(persisted(1, { s: state }), () => world);
    expect(await h.coordinator.begin(signal)).toBe(true);
    await h.coordinator.runRound(signal);
    world = { ...world, paused: true };
    await h.coordinator.runRound(signal);
    await h.coordinator.runRound(signal); // still paused: said once
    expect(h.events.filter((e) => e.includes('Rollout'))).toEqual([
      expect.stringMatching(/^Normal RolloutRestart: restarting replica s-2/),
      'Normal RolloutPaused: rollout paused (shoal.dev/paused); s-2\'s restart is still finishing',
    ]);
  });

  it('carries out a switchover: the promotion, then the old master told to follow, each with its budget', async () => {
    const h = harness(persisted(1, { s: state }), () => patch(rs, 's-0', { deleting: true }));
    await h.coordinator.begin(signal);
    await h.coordinator.runRound(signal);
    expect(h.sent).toEqual([`fence:s-0:${T.fenceBudgetMs}`, `waitCatchUp:s-1:${T.catchUpTimeoutMs}`, `promote:s-1:${T.promoteBudgetMs}`, `rejoinAsReplica:s-0:${T.commandBudgetMs}`, `reconfigure:s-2:${T.commandBudgetMs}`]);
    expect(h.state().replicasets.s?.master).toBe('s-1');
  });
});
