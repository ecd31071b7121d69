// The coordinator loop, run by the Lease holder only: take a new term (CAS on the state ConfigMap),
// then every interval observe → reconcile (pure core) → run the batch (persist by CAS first, then
// commands, gates stop it) → publish the cluster view and topology. Requested switchovers are
// planned between rounds with the same machinery. A newer term in the ConfigMap ends the loop.
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { stableJson } from '../decide/batch.js';
import type { ObservedCluster, PersistedState, Timings } from '../decide/model.js';
import { reconcile, type ReconcileResult } from '../decide/reconcile.js';
import { planSwitchover, type SwitchoverRequest } from '../decide/switchover.js';
import { sleep } from '../../common/time.js';
import type { JsonObject } from '../wire/mesh-protocol.js';
import type { Snapshot } from '../state/store.js';
import type { InstanceRole, RolloutPhase } from '../../common/status.js';
import { runBatch, type ActionDeps, type BatchOutcome } from './actions.js';
import type { ControlMetrics } from './metrics.js';
import { buildClusterView, buildTarantoolTopology, encodeTopologyMessage } from '../wire/cluster-view.js';

export interface CoordinatorStore {
  read(signal: AbortSignal): Promise<Snapshot<PersistedState> | null>;
  bumpTerm(holder: string, signal: AbortSignal, atLeast?: number): Promise<Snapshot<PersistedState>>;
}

export interface CoordinatorOptions {
  self: string;
  namespace: string;
  cluster: string;
  store: CoordinatorStore;
  observer: {
    observe(persisted: PersistedState, now: number): ObservedCluster;
    roles(): Map<string, InstanceRole>;
    /** Clears what belongs to the old term; returns what it carried on, for the log. */
    beginTerm(now: number): string;
  };
  /** Everything runBatch needs except termChanged (the loop owns the term). */
  actions: Omit<ActionDeps, 'termChanged'>;
  mesh: {
    observeTerm(term: number, holder: string | null): void;
    highestTerm(): { term: number };
    pushTopology(topology: JsonObject, term: number): void;
  };
  /** The core's timings; rounds are timings.coordinatorIntervalMs apart. */
  timings: Timings;
  /** Re-publish an unchanged view this often (agents that just connected get it). */
  republishMs?: number;
  metrics: ControlMetrics;
  logger: Logger;
  /** Wall clock (default Date.now): persisted timestamps are compared across coordinators. */
  clock?: () => number;
  /** Called with every term this coordinator takes or moves to. */
  onTerm?: (term: number) => void;
}

export type SwitchoverOutcome =
  | { ok: true; from: string; to: string; reason: string }
  | { ok: false; retry: boolean; reason: string };

interface PendingSwitchover {
  request: SwitchoverRequest;
  resolve: (o: SwitchoverOutcome) => void;
  signal: AbortSignal;
}

interface Watch {
  replicaset: string;
  from: string;
  to: string;
  reason: string;
  resolve: (o: SwitchoverOutcome) => void;
  signal: AbortSignal;
}

export class Coordinator {
  private term = 0;
  private persisted: PersistedState | null = null;
  private dirty = true;
  private lastReason = '';
  private lastPublished = '';
  private lastPublishAt = 0;
  private running = false;
  /** Each replica set's rollout phase as this coordinator last planned it (the core's memory of phases). */
  private readonly phases = new Map<string, RolloutPhase>();
  private readonly queue: PendingSwitchover[] = [];
  private readonly watches: Watch[] = [];
  private readonly clock: () => number;

  constructor(private readonly o: CoordinatorOptions) {
    this.clock = o.clock ?? Date.now;
  }

  get currentTerm(): number {
    return this.term;
  }

  get active(): boolean {
    return this.running;
  }

  /**
   * Coordinates until `signal` aborts (leadership lost) or a newer term shows up. Resolves with why
   * it stopped; never rejects.
   */
  async run(signal: AbortSignal): Promise<string> {
    try {
      if (!(await this.begin(signal))) return 'stopped before a term was taken';
      while (!signal.aborted) {
        const started = this.clock();
        const stop = await this.runRound(signal);
        if (stop !== null) return stop;
        const wait = this.o.timings.coordinatorIntervalMs - (this.clock() - started);
        await sleep(Math.max(10, wait), signal).catch(() => undefined);
      }
      return 'leadership ended';
    } finally {
      this.end();
    }
  }

  /** Takes a new term (CAS); false when `signal` aborted first. run() does this, then rounds. */
  async begin(signal: AbortSignal): Promise<boolean> {
    const snap = await this.takeTerm(signal);
    if (!snap) return false;
    this.running = true;
    this.persisted = snap.state;
    this.dirty = false;
    const inherited = this.o.observer.beginTerm(this.clock());
    this.setTerm(snap.term);
    this.o.metrics.leader.set(1);
    this.o.logger.info({ term: snap.term, inherited }, `coordinating the cluster as term ${snap.term}`);
    this.o.actions.event('', 'Normal', 'Coordinator', `${this.o.self} coordinates cluster ${this.o.cluster} as term ${snap.term}`);
    return true;
  }

  /** Stops coordinating: what was asked of this coordinator is answered "ask again". */
  end(): void {
    this.running = false;
    this.o.metrics.leader.set(0);
    this.phases.clear();
    this.o.metrics.rolloutPhase.reset(); // only the coordinator plans rollouts
    const why = 'this agent stopped coordinating; ask again (the new coordinator answers)';
    for (const p of this.queue.splice(0)) p.resolve({ ok: false, retry: true, reason: why });
    for (const w of this.watches.splice(0)) w.resolve({ ok: false, retry: true, reason: why });
  }

  /** Queues a switchover for the next round; resolves when it is done, refused or abandoned. */
  requestSwitchover(request: SwitchoverRequest, signal: AbortSignal): Promise<SwitchoverOutcome> {
    if (!this.running) return Promise.resolve({ ok: false, retry: true, reason: 'this agent is not coordinating (yet)' });
    return new Promise((resolve) => {
      const entry: PendingSwitchover = { request, resolve, signal };
      this.queue.push(entry);
      signal.addEventListener('abort', () => resolve({ ok: false, retry: true, reason: 'the request was abandoned by its caller (timeout)' }), { once: true });
    });
  }

  // bumpTerm needs the API server; retried (bounded by leadership) so a blip does not lose the Lease's use.
  private async takeTerm(signal: AbortSignal): Promise<Snapshot<PersistedState> | null> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        return await this.o.store.bumpTerm(this.o.self, signal, this.o.mesh.highestTerm().term);
      } catch (err) {
        if (signal.aborted) break;
        this.o.logger.warn({ err: errorMessage(err), attempt }, 'could not take a new term; retrying');
        await sleep(Math.min(2_000, 200 * 2 ** attempt), signal).catch(() => undefined);
      }
    }
    return null;
  }

  private setTerm(term: number): void {
    this.term = term;
    this.o.mesh.observeTerm(term, this.o.self);
    this.o.metrics.term.set(term);
    this.o.onTerm?.(term);
  }

  /** One round (after begin()): returns why to stop, or null to go on. Never rejects. */
  async runRound(signal: AbortSignal): Promise<string | null> {
    const timer = this.o.metrics.roundSeconds.startTimer();
    try {
      if (this.dirty || this.persisted === null) {
        const snap = await this.o.store.read(signal);
        if (snap && snap.term !== this.term) return `the state now belongs to term ${snap.term} (${snap.coordinator || 'nobody'})`;
        if (!snap) return 'the state ConfigMap disappeared';
        this.persisted = snap.state;
        this.dirty = false;
      }
      for (const p of this.queue.splice(0)) {
        const stop = await this.switchover(p, signal);
        if (stop !== null) return stop;
      }
      const observed = this.o.observer.observe(this.persisted, this.clock());
      const result = reconcile(observed, this.persisted, this.o.timings, Object.fromEntries(this.phases));
      // Logged when it changes, not when only a running duration in it does ("silent for 1.2 s").
      const gist = result.reason.replace(/\d+(\.\d+)? s\b/g, '# s');
      if (gist !== this.lastReason) {
        this.o.logger.info({ reason: result.reason, actions: result.actions.length }, 'coordinator round');
        this.lastReason = gist;
      }
      this.trackRollouts(result);
      const outcome = await this.execute(result.actions, observed, signal);
      this.o.metrics.rounds.inc({ result: outcome.stoppedAt ? 'stopped' : 'ok' });
      if (outcome.stale) return outcome.stale.message;
      this.settleWatches();
      this.publish(observed, result);
      return null;
    } catch (err) {
      if (signal.aborted) return 'leadership ended';
      this.dirty = true; // e.g. a persist whose reply was lost: re-read before deciding again
      this.o.metrics.rounds.inc({ result: 'error' });
      this.o.logger.warn({ err: errorMessage(err) }, 'coordinator round failed; retrying');
      return null;
    } finally {
      timer();
    }
  }

  private async execute(actions: ReconcileResult['actions'], observed: ObservedCluster, signal: AbortSignal): Promise<BatchOutcome> {
    const before = this.persisted as PersistedState;
    const outcome = await runBatch(actions, before, observed, { ...this.o.actions, termChanged: (t) => this.setTerm(t) }, signal);
    this.persisted = outcome.persisted;
    if (outcome.records.some((r) => !r.ok && r.action.kind === 'persist')) this.dirty = true;
    this.countPromotions(before, outcome);
    return outcome;
  }

  // A completed promotion that changed the master: a switchover when a catch-up preceded it.
  private countPromotions(before: PersistedState, outcome: BatchOutcome): void {
    const caughtUp = new Set(outcome.records.filter((r) => r.ok && r.action.kind === 'waitCatchUp').map((r) => ('pod' in r.action ? r.action.pod : '')));
    for (const r of outcome.records) {
      if (!r.ok || r.action.kind !== 'promote') continue;
      const previous = before.replicasets[r.action.replicaset]?.master ?? null;
      if (previous === null || previous === r.action.pod) continue;
      if (caughtUp.has(r.action.pod)) this.o.metrics.switchovers.inc({ result: 'done' });
      else this.o.metrics.failovers.inc();
    }
  }

  private async switchover(p: PendingSwitchover, signal: AbortSignal): Promise<string | null> {
    if (p.signal.aborted) return null;
    const persisted = this.persisted as PersistedState;
    const observed = this.o.observer.observe(persisted, this.clock());
    const plan = planSwitchover(observed, persisted, p.request, this.o.timings);
    if (!plan.ok) {
      this.o.logger.info({ request: p.request, reason: plan.reason }, 'switchover refused');
      this.o.metrics.switchovers.inc({ result: 'refused' });
      p.resolve({ ok: false, retry: plan.retry, reason: plan.reason });
      return null;
    }
    this.o.logger.info({ from: plan.from, to: plan.to, reason: plan.reason }, plan.actions.length ? 'switchover planned' : 'switchover not needed');
    const outcome = await this.execute(plan.actions, observed, signal);
    if (outcome.stale) {
      p.resolve({ ok: false, retry: true, reason: 'a newer coordinator took over during the switchover' });
      return outcome.stale.message;
    }
    this.watches.push({ replicaset: p.request.replicaset, from: plan.from, to: plan.to, reason: plan.reason, resolve: p.resolve, signal: p.signal });
    this.settleWatches();
    return null;
  }

  // A switchover is over when its record is gone: done if `to` is master, abandoned otherwise.
  private settleWatches(): void {
    const persisted = this.persisted;
    if (!persisted) return;
    for (const w of [...this.watches]) {
      const state = persisted.replicasets[w.replicaset];
      const over = !state || state.switchover === null;
      if (!over && !w.signal.aborted) continue;
      this.watches.splice(this.watches.indexOf(w), 1);
      if (w.signal.aborted) continue;
      if (state?.master === w.to) w.resolve({ ok: true, from: w.from, to: w.to, reason: w.reason });
      else w.resolve({ ok: false, retry: true, reason: `switchover from ${w.from} to ${w.to} did not complete; ${state?.master ?? 'nobody'} is master` });
    }
  }

  /** The phase gauge, and the phases the next round's Events are decided against (rollout.ts). */
  private trackRollouts(result: ReconcileResult): void {
    for (const [rs, { rollout }] of Object.entries(result.replicasets)) {
      const prev = this.phases.get(rs);
      if (prev === rollout.phase) continue;
      if (prev !== undefined) this.o.metrics.rolloutPhase.set({ replicaset: rs, phase: prev }, 0);
      this.o.metrics.rolloutPhase.set({ replicaset: rs, phase: rollout.phase }, 1);
      this.phases.set(rs, rollout.phase);
    }
  }

  private publish(observed: ObservedCluster, result: ReconcileResult): void {
    const persisted = this.persisted as PersistedState;
    const view = buildClusterView(observed, persisted, result.replicasets, this.o.observer.roles(), this.o.timings, this.o.self, result.sharding ?? '');
    const topology = buildTarantoolTopology(observed, persisted, this.o.namespace, this.o.cluster);
    const key = stableJson({ view, topology });
    const now = this.clock();
    if (key === this.lastPublished && now - this.lastPublishAt < (this.o.republishMs ?? 2_000)) return;
    this.lastPublished = key;
    this.lastPublishAt = now;
    this.o.mesh.pushTopology(encodeTopologyMessage({ view, topology }), this.term);
  }
}
