// A toy world for the coordinator's property tests: one StatefulSet's pods with Tarantool processes
// (read-only flags, replication lists, vclocks, a _cluster registry, sync and async writes), the
// StatefulSet controller, network isolation and agents that self-fence and refuse old terms. The
// coordinator is the real one (coordinator/loop.ts, its batch runner coordinator/actions.ts and the
// wire encoding of commands), driven one round per tick; the world fakes only its adapters: the
// state ConfigMap, the mesh (commands, decoded as an agent does), pod deletes, Events and the clock.
// Invariants are checked at those adapters (every action applied) and after every world step; a
// violation throws with the recent trace.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Coordinator } from '../../agent/coordinator/loop.js';
import { ControlMetrics } from '../../agent/coordinator/metrics.js';
import type { CommandRequest } from '../../agent/mesh/mesh.js';
import { StaleTermError, type Snapshot } from '../../agent/state/store.js';
import { decodeInstanceCommand, type InstanceCommand } from '../../agent/wire/command-payload.js';
import type { Ack } from '../../agent/wire/mesh-protocol.js';
import { stableJson } from '../../agent/decide/batch.js';
import { inMajority, shouldSelfFence, trackSince } from '../../agent/decide/fencing.js';
import { isQuarantined } from '../../agent/decide/members.js';
import type {
  FailoverMode,
  ObservedCluster,
  ObservedInstance,
  ObservedTarantool,
  PersistedState,
  Timings,
} from '../../agent/decide/model.js';
import { beginTerm, emptyState, reconcile } from '../../agent/decide/reconcile.js';
import { DEFAULT_TIMINGS } from '../../agent/decide/timings.js';
import { covers, dominates } from '../../agent/tarantool/vclock.js';

/** What a stopped applier reports: an error a restart heals, and Tarantool 2.6's sync mismatch, which only a rebootstrap heals. */
const APPLIER_ERRORS = { restart: 'Invalid MsgPack - packet body', rebootstrap: 'CONFIRM message arrived for an unknown master id 1, expected 0' } as const;

export const RS = 'db';
export const MAX_PODS = 5;
const GRACE_MS = 30_000;

export type SimEvent =
  | { t: 'tick'; ms: number }
  | { t: 'write'; sync: boolean }
  | { t: 'killTarantool'; pod: number; downForMs: number }
  | { t: 'deletePod'; pod: number }
  | { t: 'isolate'; pod: number }
  | { t: 'heal'; pod: number }
  | { t: 'healAll' }
  | { t: 'scale'; replicas: number }
  | { t: 'template' }
  | { t: 'rollback' }
  | { t: 'pause'; on: boolean }
  | { t: 'failoverMode'; mode: FailoverMode }
  | { t: 'switchover'; to: number | null }
  | { t: 'newCoordinator'; cutBatchAt: number | null }
  /** The same faults aimed at whichever instance is writable now. */
  | { t: 'masterFault'; fault: 'isolate' | 'kill' | 'delete'; downForMs: number }
  /** A replica's appliers stop with an error that a replication restart heals, or only a rebootstrap (2.6's sync mismatch). */
  | { t: 'stopApplier'; pod: number; heals: 'restart' | 'rebootstrap' };

type Clock = Record<string, number>;

interface Pod {
  name: string;
  ordinal: number;
  exists: boolean;
  deletingSince: number | null;
  uid: number;
  incarnation: number;
  revision: string;
  isolated: boolean;
  proc: 'down' | 'unconfigured' | 'running';
  downUntil: number;
  ro: boolean;
  replication: string[];
  quorum: number | null;
  /** The data directory (a PVC: it survives the pod). */
  data: { vclock: Clock; id: number | null };
  keptAside: number;
  /** Its appliers stopped with an error (it pulls nothing); what clears it. */
  applierStopped: 'restart' | 'rebootstrap' | null;
  knownTerm: number;
  /** World fact: since when this pod has been without a mesh majority (or gone). */
  noMajoritySince: number | null;
  tarantoolDownSince: number | null;
}

export class InvariantViolation extends Error {}

/** What the loop logs when a round throws: in the sim that is a bug, never a retry. */
const ROUND_FAILED = 'coordinator round failed';

function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export class Sim {
  now = 1_000_000;
  readonly timings: Timings = DEFAULT_TIMINGS;
  pods: Pod[];
  spec = 3;
  revision = 1;
  previousRevision = 1;
  paused = false;
  failover: FailoverMode = 'auto';
  /** The state ConfigMap. */
  state: PersistedState = emptyState();
  coordinators = 0;
  registry = new Map<string, number>();
  acked: Array<{ id: string; lsn: number }> = [];
  /** The coordinator dies before the `at`-th action of its next round. */
  cut: { at: number; done: number } | null = null;
  trace: string[] = [];
  private coordinator: Coordinator | null = null;
  private leadership = new AbortController();
  private violation: InvariantViolation | null = null;
  private readonly metrics = new ControlMetrics(new Registry());
  private readonly logger = pino({ level: 'warn' }, { write: (line: string) => this.loggerLine(line) });
  stats = { promotions: 0, rebootstraps: 0, expels: 0, deletes: 0, switchovers: 0, refused: 0, writesAcked: 0 };

  constructor() {
    this.pods = Array.from({ length: MAX_PODS }, (_, n) => ({
      name: `${RS}-${n}`,
      ordinal: n,
      exists: false,
      deletingSince: null,
      uid: 0,
      incarnation: 0,
      revision: 'rev-1',
      isolated: false,
      proc: 'down',
      downUntil: 0,
      ro: true,
      replication: [],
      quorum: null,
      data: { vclock: {}, id: null },
      keptAside: 0,
      applierStopped: null,
      knownTerm: 0,
      noMajoritySince: null,
      tarantoolDownSince: null,
    }));
  }

  // ---- world helpers ----
  private uri = (p: Pod): string => `${p.name}.${p.incarnation}:3301`;
  /** Commands carry instance UUIDs, which an agent validates. */
  private uuid = (p: Pod): string => `00000000-0000-4000-8000-${String(p.ordinal).padStart(12, '0')}`;
  private byUri = (uri: string): Pod | undefined => this.pods.find((p) => p.exists && this.uri(p) === uri);
  private byName = (name: string): Pod | undefined => this.pods.find((p) => p.name === name);
  private reachable = (p: Pod): boolean => p.exists && !p.isolated;
  private canTalk = (a: Pod, b: Pod): boolean => a === b || (this.reachable(a) && this.reachable(b));
  private meshSize = (): number => this.pods.filter((p) => p.exists).length;
  private connectedPeers = (p: Pod): number => (this.reachable(p) ? this.pods.filter((q) => this.reachable(q)).length - 1 : 0);
  private writable = (p: Pod): boolean => p.exists && p.proc === 'running' && !p.ro;
  private merge(into: Pod, from: Clock): void {
    for (const [k, v] of Object.entries(from)) if (k !== '0' && v > (into.data.vclock[k] ?? 0)) into.data.vclock = { ...into.data.vclock, [k]: v };
  }
  private following(p: Pod): boolean {
    if (p.proc !== 'running' || !p.ro || p.applierStopped !== null) return false;
    return this.pods.some((w) => this.writable(w) && p.replication.includes(this.uri(w)) && this.canTalk(p, w));
  }

  log(line: string): void {
    this.trace.push(`[${this.now}] ${line}`);
    if (this.trace.length > 400) this.trace.shift();
  }

  /** Thrown, and kept: the loop catches what an adapter throws (a failed action), the sim must not. */
  fail(message: string): never {
    this.violation ??= new InvariantViolation(`${message}\n--- trace ---\n${this.trace.join('\n')}`);
    throw this.violation;
  }

  private loggerLine(line: string): void {
    if (line.includes(ROUND_FAILED)) this.fail(`the coordinator's round threw: ${line}`);
  }

  // ---- events ----
  async run(events: readonly SimEvent[]): Promise<void> {
    if (this.coordinator === null) await this.takeOver();
    for (const e of events) await this.apply(e);
  }

  async apply(e: SimEvent): Promise<void> {
    this.log(`event ${JSON.stringify(e)}`);
    const pod = 'pod' in e ? this.pods[e.pod] : undefined;
    switch (e.t) {
      case 'tick':
        return await this.tick(e.ms);
      case 'write':
        return this.write(e.sync);
      case 'killTarantool':
        if (pod?.exists && pod.proc !== 'down') {
          pod.proc = 'down';
          pod.ro = true;
          pod.downUntil = this.now + e.downForMs;
          if (pod.applierStopped === 'restart') pod.applierStopped = null;
        }
        return this.checkWorld();
      case 'deletePod':
        if (pod?.exists && pod.deletingSince === null) pod.deletingSince = this.now;
        return;
      case 'isolate':
        if (pod) pod.isolated = true;
        return;
      case 'heal':
        if (pod) pod.isolated = false;
        return;
      case 'healAll':
        for (const p of this.pods) p.isolated = false;
        return;
      case 'scale':
        this.spec = e.replicas;
        return;
      case 'template':
        this.previousRevision = this.revision;
        this.revision += 1;
        return;
      case 'rollback':
        [this.revision, this.previousRevision] = [this.previousRevision, this.revision];
        return;
      case 'pause':
        this.paused = e.on;
        return;
      case 'failoverMode':
        this.failover = e.mode;
        return;
      case 'switchover':
        this.switchover(e.to);
        return;
      case 'masterFault': {
        const w = this.pods.findIndex((p) => this.writable(p));
        if (w < 0) return;
        if (e.fault === 'isolate') return this.apply({ t: 'isolate', pod: w });
        if (e.fault === 'kill') return this.apply({ t: 'killTarantool', pod: w, downForMs: e.downForMs });
        return this.apply({ t: 'deletePod', pod: w });
      }
      case 'stopApplier':
        if (pod?.proc === 'running' && !this.writable(pod)) pod.applierStopped = e.heals;
        return;
      case 'newCoordinator':
        this.cut = e.cutBatchAt === null ? null : { at: e.cutBatchAt, done: 0 };
        if (e.cutBatchAt === null) await this.takeOver();
        return;
    }
  }

  /** The old coordinator stops (its Lease is gone); a new one takes a term, as after an election. */
  private async takeOver(): Promise<void> {
    this.coordinator?.end();
    this.leadership.abort();
    this.leadership = new AbortController();
    this.coordinators += 1;
    this.coordinator = this.newCoordinator(`coordinator-${this.coordinators}`);
    if (!(await this.coordinator.begin(this.leadership.signal))) this.fail('the new coordinator could not take a term');
    this.log(`new coordinator, term ${this.state.term}`);
  }

  private write(sync: boolean): void {
    const w = this.pods.find((p) => this.writable(p));
    if (!w || w.data.id === null) return;
    const id = String(w.data.id);
    const followers = this.pods.filter((p) => p !== w && p.proc === 'running' && p.replication.includes(this.uri(w)) && this.canTalk(p, w));
    if (sync && followers.length + 1 < (w.quorum ?? 1)) return; // quorum not collected: rolled back
    const lsn = (w.data.vclock[id] ?? 0) + 1;
    w.data.vclock = { ...w.data.vclock, [id]: lsn };
    if (sync) {
      for (const f of followers) this.merge(f, w.data.vclock);
      this.acked.push({ id, lsn });
      this.stats.writesAcked += 1;
    }
  }

  /** POST /switchover: queued with the coordinator, served by its next round. */
  private switchover(to: number | null): void {
    const target = to === null ? undefined : this.pods[to]?.name;
    const coordinator = this.coordinator;
    if (coordinator === null) return;
    void coordinator.requestSwitchover({ replicaset: RS, ...(target ? { to: target } : {}) }, this.leadership.signal).then((o) => {
      this.log(`switchover request → ${o.ok ? 'done' : 'not done'}: ${o.reason}`);
      if (o.ok) this.stats.switchovers += 1;
      else this.stats.refused += 1;
    });
  }

  private async tick(ms: number): Promise<void> {
    this.now += ms;
    // The StatefulSet controller and the kubelet.
    for (const p of this.pods) {
      if (p.exists) {
        // A terminating pod goes once its preStop hand-over is done (it is no longer writable) or its grace ends.
        if (p.deletingSince === null && p.ordinal >= this.spec) p.deletingSince = this.now;
        else if (p.deletingSince !== null && (!this.writable(p) || this.now - p.deletingSince >= GRACE_MS)) this.removePod(p);
      } else if (p.ordinal < this.spec) {
        this.createPod(p);
      }
      if (p.exists && p.proc === 'down' && this.now >= p.downUntil) p.proc = 'unconfigured';
    }
    // Replication pulls.
    for (const p of this.pods) {
      if (p.proc !== 'running' || p.applierStopped !== null) continue;
      for (const uri of p.replication) {
        const src = this.byUri(uri);
        if (!src || src === p || src.proc !== 'running' || !this.canTalk(p, src)) continue;
        // The master only ever sends rows: one it pulls from a peer is a write it never had
        // (resurrected or diverged data; in Tarantool 2.6 a conflict stops the master).
        if (this.writable(p) && !covers(p.data.vclock, src.data.vclock)) {
          this.fail(`master ${p.name} ${JSON.stringify(p.data.vclock)} pulls rows it never had from ${src.name} ${JSON.stringify(src.data.vclock)}`);
        }
        this.merge(p, src.data.vclock);
      }
    }
    // Failure trackers, and agents fencing themselves (noticing a lost majority a heartbeat late).
    const size = this.meshSize();
    for (const p of this.pods) {
      p.noMajoritySince = trackSince(p.noMajoritySince, !p.exists || !inMajority(this.connectedPeers(p), size), this.now);
      p.tarantoolDownSince = trackSince(p.tarantoolDownSince, !p.exists || (!p.isolated && p.proc === 'down'), this.now);
      if (!this.writable(p)) continue;
      const noticed = p.noMajoritySince === null ? null : p.noMajoritySince + this.timings.heartbeatTimeoutMs;
      const decision = shouldSelfFence({
        isMaster: true,
        reachablePeers: this.connectedPeers(p),
        clusterSize: size,
        peersKnown: true,
        lostMajoritySinceMs: noticed !== null && noticed <= this.now ? noticed : null,
        now: this.now,
        timings: this.timings,
      });
      if (decision.fence) {
        p.ro = true;
        this.log(`${p.name} self-fences: ${decision.reason}`);
      }
    }
    this.checkWorld();
    await this.round();
  }

  private createPod(p: Pod): void {
    Object.assign(p, {
      exists: true,
      deletingSince: null,
      uid: p.uid + 1,
      incarnation: p.incarnation + 1,
      revision: `rev-${this.revision}`,
      isolated: false,
      proc: 'unconfigured',
      ro: true,
      replication: [],
      quorum: null,
      knownTerm: 0,
    });
  }

  private removePod(p: Pod): void {
    Object.assign(p, { exists: false, deletingSince: null, proc: 'down', ro: true, isolated: false });
  }

  // ---- the coordinator ----
  observe(persisted: PersistedState = this.state): ObservedCluster {
    const size = this.meshSize();
    const names = new Set([...this.pods.filter((p) => p.exists).map((p) => p.name), ...(persisted.replicasets[RS]?.members.map((m) => m.pod) ?? [])]);
    const instances = this.pods.filter((p) => names.has(p.name)).map((p) => this.observeOne(p, size));
    const reachable = this.pods.filter((p) => this.reachable(p)).length;
    return {
      now: this.now,
      mesh: { size, reachableFromCoordinator: Math.max(reachable, 1) },
      replicasets: [
        { name: RS, specReplicas: this.spec, updateRevision: `rev-${this.revision}`, failover: this.failover, paused: this.paused, instances },
      ],
    };
  }

  private upstreamsOf(p: Pod): ObservedTarantool['upstreams'] {
    return p.replication
      .map((uri) => this.byUri(uri))
      .filter((src): src is Pod => src !== undefined && src !== p && src.proc === 'running')
      .map((src) =>
        p.applierStopped !== null
          ? { uuid: this.uuid(src), status: 'stopped', message: APPLIER_ERRORS[p.applierStopped] }
          : { uuid: this.uuid(src), status: this.canTalk(p, src) ? 'follow' : 'disconnected', message: null },
      );
  }

  private observeOne(p: Pod, size: number): ObservedInstance {
    const visible = this.reachable(p);
    const tarantool: ObservedTarantool | null = !visible
      ? null
      : {
          configured: p.proc === 'running',
          alive: p.proc !== 'down',
          ro: p.ro,
          status: p.proc === 'running' ? 'running' : p.proc === 'down' ? 'down' : 'unconfigured',
          vclock: p.proc === 'down' ? null : { ...p.data.vclock },
          id: p.proc === 'running' ? p.data.id : null,
          upstreamOk: this.following(p),
          upstreams: p.proc !== 'running' ? [] : this.upstreamsOf(p),
          lagMs: this.following(p) ? 0 : null,
          replication: [...p.replication],
          synchroQuorum: p.proc === 'running' ? p.quorum : null,
          clusterUuids: p.proc === 'running' ? [...this.registry.keys()] : null,
        };
    const deleting = p.deletingSince !== null;
    return {
      pod: p.name,
      ordinal: p.ordinal,
      uid: p.exists ? `uid-${p.name}-${p.uid}` : null,
      instanceUuid: this.uuid(p),
      podExists: p.exists,
      podReady: p.exists && !deleting && p.proc === 'running' && (!p.ro || this.following(p)),
      deleting,
      revision: p.exists ? p.revision : null,
      uri: p.exists ? this.uri(p) : null,
      agentReachable: visible,
      reachableFrom: { peers: this.connectedPeers(p), of: Math.max(size - 1, 0) },
      unreachableSinceMs: p.noMajoritySince,
      tarantoolDownSinceMs: p.tarantoolDownSince,
      tarantool,
    };
  }

  /** One round of the real coordinator; a cut one dies mid-round and another takes over. */
  private async round(): Promise<void> {
    const coordinator = this.coordinator;
    if (coordinator === null) return;
    if (this.cut) this.cut.done = 0;
    await coordinator.runRound(this.leadership.signal);
    if (this.violation) throw this.violation;
    if (this.cut !== null) {
      this.log(`coordinator dies after ${this.cut.done} actions of its round`);
      this.cut = null;
      await this.takeOver();
    }
  }

  /** Each action the loop carries out passes here first: a cut coordinator dies before the next. */
  private step(): void {
    if (this.cut === null) return;
    if (this.cut.done >= this.cut.at) {
      this.leadership.abort();
      throw new Error('the coordinator died');
    }
    this.cut.done += 1;
  }

  private snapshot(): Snapshot<PersistedState> {
    const s = this.state;
    return { term: s.term, coordinator: s.coordinator ?? '', state: s, updatedAt: '', resourceVersion: String(s.term) };
  }

  private newCoordinator(self: string): Coordinator {
    const metrics = this.metrics;
    const logger = this.logger;
    return new Coordinator({
      self,
      namespace: 'sim',
      cluster: 'sim',
      // The state ConfigMap: CAS fenced by the term, as agent/state/store.ts does it.
      store: {
        read: () => Promise.resolve(this.snapshot()),
        bumpTerm: (holder, _signal, atLeast = 0) => {
          const term = Math.max(this.state.term, atLeast) + 1;
          this.state = deepFreeze({ ...beginTerm(this.state, holder), term });
          return Promise.resolve(this.snapshot());
        },
      },
      observer: {
        observe: (persisted) => this.observeForRound(persisted),
        roles: () => new Map(),
        beginTerm: () => '',
      },
      actions: {
        store: {
          update: (mutator, opts) => {
            this.step();
            if (opts.term !== undefined && opts.term !== this.state.term) {
              return Promise.reject(new StaleTermError(opts.term, this.state.term, this.state.coordinator ?? ''));
            }
            const next = mutator(this.snapshot());
            if (next !== undefined) {
              this.checkTransition(this.state, next);
              this.state = deepFreeze(structuredClone(next));
              this.log(`done persist (t${next.term})`);
            }
            return Promise.resolve(this.snapshot());
          },
        },
        send: (pod, req) => Promise.resolve(this.agent(pod, req)),
        deletePod: (pod, uid) => {
          this.step();
          return Promise.resolve(this.deletePod(pod, uid));
        },
        event: (_rs, type, reason, message) => {
          this.step();
          this.log(`event ${type} ${reason}: ${message}`);
        },
        acknowledged: () => undefined,
        metrics,
        logger,
      },
      mesh: { observeTerm: () => undefined, highestTerm: () => ({ term: this.state.term }), pushTopology: () => undefined },
      timings: this.timings,
      metrics,
      logger,
      clock: () => this.now,
    });
  }

  /** The observer's answer, frozen (the core must not mutate it); the core checked on the same input. */
  private observeForRound(persisted: PersistedState): ObservedCluster {
    const observed = deepFreeze(this.observe(persisted));
    const result = reconcile(observed, persisted, this.timings);
    if (stableJson(reconcile(observed, persisted, this.timings)) !== stableJson(result)) this.fail('reconcile is not deterministic');
    if (result.nextPersisted.term < persisted.term) this.fail('the term went backwards');
    for (const a of result.actions) {
      if (a.term !== result.nextPersisted.term) this.fail(`action ${a.kind} carries term ${a.term}, the round's is ${result.nextPersisted.term}`);
    }
    if (result.actions.length > 0) this.log(`reconcile: ${result.reason}`);
    return observed;
  }

  /** A pod's agent receiving a command over the mesh: decoded and checked as the real one does. */
  private agent(pod: string, req: CommandRequest): Ack {
    this.step();
    const ack = (ok: boolean, detail: Record<string, unknown> = {}): Ack =>
      ok ? { type: 'ack', v: 1, id: 'sim', ok, result: { at: this.now, detail } as Ack['result'] } : { type: 'ack', v: 1, id: 'sim', ok, error: 'failed' };
    if (req.term !== this.state.term) this.fail(`action ${req.kind} carries term ${req.term}, the persisted one is ${this.state.term}`);
    const cmd = decodeInstanceCommand(req.kind, req.payload);
    if (cmd.pod !== pod) this.fail(`${cmd.kind} for ${cmd.pod} sent to ${pod}`);
    const ok = this.perform(cmd, req.term);
    this.log(`${ok ? 'done' : 'FAILED'} ${cmd.kind} ${cmd.pod} (t${req.term}): ${cmd.reason}`);
    this.checkWorld();
    const p = this.byName(pod);
    return ack(ok, cmd.kind === 'fence' && p?.proc === 'running' ? { vclock: { ...p.data.vclock } } : {});
  }

  /** An agent carrying out one command; false when it fails. */
  private perform(a: InstanceCommand, term: number): boolean {
    const p = this.byName(a.pod);
    if (!p || !this.reachable(p)) return false;
    if (term < p.knownTerm) {
      this.stats.refused += 1;
      this.fail(`${p.name} refused ${a.kind} of term ${term} (knows ${p.knownTerm}): the current coordinator sent an old term`);
    }
    p.knownTerm = term;
    const rs = this.state.replicasets[RS];
    switch (a.kind) {
      case 'bootstrapMaster':
        if (p.proc !== 'unconfigured' || Object.keys(p.data.vclock).length > 0) return false;
        this.registry = new Map([[this.uuid(p), 1]]);
        p.data = { vclock: { 1: 1 }, id: 1 };
        Object.assign(p, { proc: 'running', ro: false, replication: [...a.replication], quorum: a.synchroQuorum });
        return true;
      case 'joinReplica':
      case 'rebootstrap': {
        if (p.proc === 'down') return false;
        if (a.kind === 'rebootstrap') {
          if (this.writable(p) || a.pod === rs?.master) this.fail(`rebootstrapping ${p.name}, the master`);
          p.applierStopped = null;
          p.keptAside += 1;
          p.data = { vclock: {}, id: null };
          p.proc = 'unconfigured';
          this.stats.rebootstraps += 1;
        }
        if (p.proc === 'running') return false;
        if (Object.keys(p.data.vclock).length === 0) {
          const src = a.replication.map((u) => this.byUri(u)).find((s): s is Pod => s !== undefined && s !== p && this.writable(s) && this.canTalk(p, s));
          if (!src) return false;
          const id = this.registry.get(this.uuid(p)) ?? Math.max(0, ...this.registry.values()) + 1;
          this.registry.set(this.uuid(p), id);
          p.data = { vclock: { ...src.data.vclock }, id };
        } else if (!this.registry.has(this.uuid(p))) {
          return false; // Tarantool refuses to subscribe an unregistered instance with data
        }
        Object.assign(p, { proc: 'running', ro: true, replication: [...a.replication], quorum: a.synchroQuorum });
        return true;
      }
      case 'restartReplication':
        if (this.writable(p) || a.pod === rs?.master) this.fail(`restarting the replication of ${p.name}, the master`);
        if (p.proc !== 'running') return false;
        Object.assign(p, { replication: [...a.replication], quorum: a.synchroQuorum });
        if (p.applierStopped === 'restart') p.applierStopped = null;
        return true;
      case 'reconfigure':
      case 'rejoinAsReplica':
        if (p.proc !== 'running') return false;
        Object.assign(p, { replication: [...a.replication], quorum: a.synchroQuorum });
        if (a.kind === 'rejoinAsReplica') p.ro = true;
        return true;
      case 'bootstrapBuckets':
        // The simulated world has one plain replica set: nothing shards, so nothing may ask for buckets.
        return this.fail(`bootstrapBuckets sent to ${p.name} in a cluster without sharding roles`);
      case 'findMasters':
        return this.fail(`findMasters sent to ${p.name} in a cluster without sharding roles`);
      case 'expel':
        if (!this.writable(p)) return false;
        // Deleting the _cluster row of a member would cut it off; of a returning pod not yet rejoined is fine.
        if (rs?.members.some((m) => m.pod === a.expelledPod)) this.fail(`deleting member ${a.expelledPod} from _cluster`);
        this.registry.delete(a.expelledUuid);
        this.stats.expels += 1;
        return true;
      case 'fence':
        if (p.proc === 'down') return true; // nothing runs: nothing can write
        p.ro = true;
        return true;
      case 'promote':
        if (p.proc !== 'running') return false;
        this.checkPromotion(p, rs ? (pod: string) => isQuarantined(rs, pod) : () => false);
        Object.assign(p, { ro: false, replication: [...a.replication], quorum: a.synchroQuorum });
        this.stats.promotions += 1;
        return true;
      case 'waitCatchUp': {
        const src = this.byName(a.source);
        if (!src || p.proc !== 'running') return false;
        if (src.exists && src.proc === 'running' && this.canTalk(p, src)) this.merge(p, src.data.vclock);
        return src.exists && src.proc === 'running' ? covers(p.data.vclock, src.data.vclock) : false;
      }
    }
  }

  /** The API server: a delete with the uid precondition. */
  private deletePod(name: string, uid: string | null): 'deleted' | 'gone' | 'replaced' {
    const p = this.byName(name);
    if (!p?.exists) return 'gone';
    if (uid !== null && `uid-${p.name}-${p.uid}` !== uid) return 'replaced'; // precondition failed
    this.log(`done deletePod ${name}`);
    if (p.deletingSince !== null) return 'deleted';
    this.checkRolloutDelete(p);
    p.deletingSince = this.now;
    this.stats.deletes += 1;
    return 'deleted';
  }

  // ---- invariants ----
  private checkWorld(): void {
    const writers = this.pods.filter((p) => this.writable(p));
    if (writers.length > 1) this.fail(`two writable instances: ${writers.map((p) => p.name).join(', ')}`);
    const rs = this.state.replicasets[RS];
    if (rs && rs.master !== null && !rs.members.some((m) => m.pod === rs.master)) this.fail(`master ${rs.master} is not a member`);
  }

  private checkTransition(before: PersistedState, after: PersistedState): void {
    if (after.term < before.term) this.fail(`persisted term went from ${before.term} to ${after.term}`);
    const b = before.replicasets[RS];
    const a = after.replicasets[RS];
    if (!a) return;
    const pods = a.members.map((m) => m.pod);
    if (new Set(pods).size !== pods.length) this.fail(`duplicate members: ${pods.join(', ')}`);
    if (a.master !== null && !pods.includes(a.master)) this.fail(`persisted master ${a.master} is not a member`);
    for (const q of a.quarantined) if (!pods.includes(q.pod)) this.fail(`quarantined ${q.pod} is not a member`);
    for (const m of b?.members ?? []) {
      if (pods.includes(m.pod)) continue;
      this.checkExpel(m.pod);
      if (m.pod === b?.master || m.pod === a.master) this.fail(`the master ${m.pod} was removed from the members`);
    }
  }

  private checkExpel(pod: string): void {
    const p = this.byName(pod);
    if (!p) return;
    if (p.exists) this.fail(`${pod} expelled while its pod exists (restarting or terminating)`);
    if (p.ordinal < this.spec) this.fail(`${pod} expelled although ordinal ${p.ordinal} < spec.replicas ${this.spec}`);
    if (this.state.replicasets[RS]?.master === pod) this.fail(`the master ${pod} was expelled`);
  }

  private checkPromotion(c: Pod, quarantined: (pod: string) => boolean): void {
    for (const p of this.pods) {
      if (p === c || p.proc !== 'running' || !this.reachable(p) || !this.canTalk(c, p) || quarantined(p.name)) continue;
      if (dominates(p.data.vclock, c.data.vclock)) {
        this.fail(`promoting ${c.name} ${JSON.stringify(c.data.vclock)} behind live ${p.name} ${JSON.stringify(p.data.vclock)}`);
      }
    }
    for (const w of this.acked) {
      if ((c.data.vclock[w.id] ?? 0) < w.lsn) this.fail(`promoting ${c.name} ${JSON.stringify(c.data.vclock)} loses acknowledged write ${w.id}:${w.lsn}`);
    }
  }

  private checkRolloutDelete(target: Pod): void {
    const master = this.state.replicasets[RS]?.master;
    if (target.name === master || this.writable(target)) this.fail(`the rollout deletes ${target.name} while it is master`);
    const down = this.pods.filter(
      (p) => p !== target && p.ordinal < this.spec && !(p.exists && p.deletingSince === null && p.proc === 'running' && !p.isolated),
    );
    if (down.length > 0) this.fail(`the rollout deletes ${target.name} while ${down.map((p) => p.name).join(', ')} is down`);
  }

  // ---- for the liveness check ----
  coordinatorReason(): string {
    return reconcile(this.observe(), this.state, this.timings).reason;
  }

  healAll(): void {
    for (const p of this.pods) p.isolated = false;
    this.paused = false;
    this.failover = 'auto';
    this.cut = null;
  }

  settled(): string | null {
    const rs = this.state.replicasets[RS];
    const expected = this.pods.filter((p) => p.ordinal < this.spec);
    const writers = this.pods.filter((p) => this.writable(p)).map((p) => p.name);
    if (!rs) return 'no state';
    if (writers.length !== 1 || writers[0] !== rs.master) return `writers ${writers.join(', ')} vs master ${rs.master ?? 'none'}`;
    const members = rs.members.map((m) => m.pod).sort();
    if (members.join() !== expected.map((p) => p.name).sort().join()) return `members ${members.join(', ')}`;
    if (rs.quarantined.length > 0) return `quarantined ${rs.quarantined.map((q) => q.pod).join(', ')}`;
    // A one-instance replica set cannot hand over, and the master is never deleted: it stays behind.
    const stale = expected.filter((p) => p.revision !== `rev-${this.revision}` && this.spec > 1);
    if (stale.length > 0) return `out of date: ${stale.map((p) => p.name).join(', ')}`;
    const notFollowing = expected.filter((p) => p.name !== rs.master && !this.following(p));
    if (notFollowing.length > 0) return `not following: ${notFollowing.map((p) => p.name).join(', ')}`;
    return null;
  }
}
