// Prometheus metrics of coordination, on the agent's registry: the term and leadership, rounds,
// actions by kind and outcome, failovers, switchovers, self-fencing, rollout steps and phase.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ActionOutcome = 'ok' | 'failed' | 'skipped';

export class ControlMetrics {
  readonly term: Gauge;
  readonly leader: Gauge;
  readonly rounds: Counter<'result'>;
  readonly roundSeconds: Histogram;
  readonly actions: Counter<'kind' | 'outcome'>;
  readonly failovers: Counter;
  readonly switchovers: Counter<'result'>;
  readonly selfFences: Counter;
  readonly rolloutRestarts: Counter<'replicaset'>;
  readonly rolloutPhase: Gauge<'replicaset' | 'phase'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.term = new Gauge({ name: 'shoal_coordinator_term', help: 'the newest coordinator term this agent knows', registers });
    this.leader = new Gauge({ name: 'shoal_coordinator_is_leader', help: '1 while this agent holds the Lease and coordinates', registers });
    this.rounds = new Counter({ name: 'shoal_coordinator_rounds_total', help: 'coordinator rounds (observe, reconcile, act), by result', labelNames: ['result'], registers });
    this.roundSeconds = new Histogram({
      name: 'shoal_coordinator_round_duration_seconds',
      help: 'duration of one coordinator round, actions included',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.actions = new Counter({ name: 'shoal_coordinator_actions_total', help: 'actions the coordinator executed, by kind and outcome', labelNames: ['kind', 'outcome'], registers });
    this.failovers = new Counter({ name: 'shoal_failovers_total', help: 'masters replaced by promotion without a hand-over (failover)', registers });
    this.switchovers = new Counter({ name: 'shoal_switchovers_total', help: 'requested or planned hand-overs of the master role, by result', labelNames: ['result'], registers });
    this.rolloutRestarts = new Counter({
      name: 'shoal_rollout_restarts_total',
      help: 'pods a rolling restart deleted so that the StatefulSet recreates them on its update revision',
      labelNames: ['replicaset'],
      registers,
    });
    this.rolloutPhase = new Gauge({
      name: 'shoal_rollout_phase',
      help: "1 for each replica set's current rolling-restart phase (idle, restarting-replicas, switching-master, restarting-old-master, paused), as this coordinator last planned it",
      labelNames: ['replicaset', 'phase'],
      registers,
    });
    this.selfFences = new Counter({ name: 'shoal_self_fences_total', help: 'times this agent made its master read-only after losing the mesh majority', registers });
  }
}
