// The ConfigMap `shoal-<cluster>-state`: state that must outlive a coordinator, written only with
// resourceVersion compare-and-swap. A 409 means another writer got there first: re-read, re-apply
// the mutator to the fresh value, try again (bounded).
import type { V1ConfigMap } from '@kubernetes/client-node';
import { ShoalError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { CLUSTER_LABEL, stateConfigMapName } from '../../common/names.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../common/kube/errors.js';
import type { Resources } from '../../common/kube/resources.js';
import { backoffDelay, sleep } from '../../common/time.js';
import { STATE_KEY, STATE_SCHEMA, StateCorruptError, decodeEnvelope, encodeEnvelope, type StateDecoder } from './envelope.js';

export interface Snapshot<S> {
  term: number;
  coordinator: string;
  state: S;
  updatedAt: string;
  /** The ConfigMap's resourceVersion this snapshot was read at. */
  resourceVersion: string;
}

/**
 * For a state type that carries the term itself (the coordinator's PersistedState has `term` and
 * `coordinator`): the store keeps the envelope's term equal to the state's on every write, and
 * bumpTerm writes the new term into the state too.
 */
export interface TermLens<S> {
  get(state: S): { term: number; coordinator: string | null };
  set(state: S, term: number, coordinator: string): S;
}

export interface StateStoreOptions<S> {
  kube: Resources;
  cluster: string;
  /** Validates the coordinator's state on every read (and every value before it is written). */
  decode: StateDecoder<S>;
  /** The state of a cluster nobody has coordinated yet. */
  initial: () => S;
  logger: Logger;
  lens?: TermLens<S>;
  /** Attempts per update before giving up on conflicts (default 20). */
  maxAttempts?: number;
  requestTimeoutMs?: number;
}

/** The persisted term moved on: the caller is no longer the coordinator and must not write. */
export class StaleTermError extends ShoalError {
  constructor(
    readonly expectedTerm: number,
    readonly persistedTerm: number,
    readonly persistedCoordinator: string,
  ) {
    super(
      `refusing to write cluster state for term ${expectedTerm}: the state already belongs to term ${persistedTerm} (${persistedCoordinator || 'nobody'})`,
      'nothing to fix: a newer coordinator took over; this one must stop acting',
    );
    this.name = 'StaleTermError';
  }
}

export interface UpdateOptions {
  signal: AbortSignal;
  /** Fence: write only while the persisted term is still this one. */
  term?: number;
}

/** Returns the new state, or undefined for "no change". May run several times: keep it pure. */
export type Mutator<S> = (current: Snapshot<S>) => S | undefined;

type EnvelopeChange<S> = { term: number; coordinator: string; state: S } | undefined;

export class StateStore<S> {
  readonly name: string;
  private readonly maxAttempts: number;

  constructor(private readonly opts: StateStoreOptions<S>) {
    this.name = stateConfigMapName(opts.cluster);
    this.maxAttempts = opts.maxAttempts ?? 20;
  }

  /** The current snapshot, or null when the ConfigMap (or its key) does not exist. Throws StateCorruptError. */
  async read(signal: AbortSignal): Promise<Snapshot<S> | null> {
    const raw = await this.readRaw(signal);
    return raw.kind === 'present' ? raw.snapshot : null;
  }

  /**
   * The persisted term and its coordinator (0 / null before the first coordinator): what the mesh
   * checks a newer command term against (pass `(signal) => store.currentTerm(signal)` as its termAuthority).
   */
  async currentTerm(signal: AbortSignal): Promise<{ term: number; holder: string | null }> {
    const snap = await this.read(signal);
    return { term: snap?.term ?? 0, holder: snap?.coordinator || null };
  }

  /** The current snapshot; creates the ConfigMap with the initial state (term 0) when absent. */
  async ensure(signal: AbortSignal): Promise<Snapshot<S>> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const snap = await this.readRaw(signal);
      if (snap.kind === 'present') return snap.snapshot;
      const state = this.opts.initial();
      const inner = this.opts.lens?.get(state);
      const initial = { term: inner?.term ?? 0, coordinator: inner?.coordinator ?? '', state };
      try {
        return snap.kind === 'absent' ? await this.create(initial, signal) : await this.replace(snap.cm, initial, signal);
      } catch (err) {
        // Someone else created or filled it first: read theirs.
        if (!isAlreadyExists(err) && !isConflict(err)) throw err;
      }
    }
    throw this.gaveUp();
  }

  /** Compare-and-swap update of the coordinator's state, fenced by `term` when given. */
  update(mutator: Mutator<S>, opts: UpdateOptions): Promise<Snapshot<S>> {
    return this.modify((cur) => {
      if (opts.term !== undefined && cur.term !== opts.term) throw new StaleTermError(opts.term, cur.term, cur.coordinator);
      const state = mutator(cur);
      if (state === undefined) return undefined;
      // With a lens the state may move the term forward (e.g. on a master change); never backwards.
      const inner = this.opts.lens?.get(state);
      if (inner && inner.term < cur.term) {
        throw new ShoalError(`refusing to lower the persisted term from ${cur.term} to ${inner.term}`, 'this is a Shoal bug; please report it');
      }
      return inner ? { term: inner.term, coordinator: inner.coordinator ?? '', state } : { term: cur.term, coordinator: cur.coordinator, state };
    }, opts.signal);
  }

  /**
   * A new coordinator's first write: term = max(persisted, atLeast) + 1, holder = `holder`, persisted
   * by CAS before it may act. `atLeast` is the highest term seen in the mesh, so a deleted or
   * rebuilt ConfigMap can never hand out a term agents already refuse.
   */
  bumpTerm(holder: string, signal: AbortSignal, atLeast = 0): Promise<Snapshot<S>> {
    return this.modify((cur) => {
      const term = Math.max(cur.term, atLeast) + 1;
      return { term, coordinator: holder, state: this.opts.lens ? this.opts.lens.set(cur.state, term, holder) : cur.state };
    }, signal);
  }

  private async modify(change: (cur: Snapshot<S>) => EnvelopeChange<S>, signal: AbortSignal): Promise<Snapshot<S>> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const raw = await this.readRaw(signal);
      if (raw.kind !== 'present') {
        await this.ensure(signal);
        continue;
      }
      const next = change(raw.snapshot);
      if (next === undefined) return raw.snapshot;
      this.checkWritable(next.state);
      try {
        // raw.cm carries the resourceVersion we read: the replace below is the compare-and-swap.
        return await this.replace(raw.cm, next, signal);
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        this.opts.logger.debug({ configMap: this.name, attempt }, 'state write conflicted; re-reading and re-applying');
        // Jittered pause so concurrent writers stop colliding in lock-step.
        await sleep(backoffDelay(attempt, { initialMs: 10, maxMs: 500 }), signal);
      }
    }
    throw this.gaveUp();
  }

  // Refuse to persist a value our own decoder would reject: a bug must not poison the ConfigMap.
  private checkWritable(state: S): void {
    try {
      this.opts.decode(JSON.parse(JSON.stringify(state)) as unknown);
    } catch (err) {
      throw new ShoalError(`refusing to write invalid cluster state: ${(err as Error).message}`, 'this is a Shoal bug; please report it', { cause: err });
    }
  }

  private gaveUp(): ShoalError {
    return new ShoalError(
      `gave up writing ConfigMap ${this.opts.kube.namespace}/${this.name} after ${this.maxAttempts} conflicting attempts`,
      'something else keeps rewriting it: check `kubectl get configmap -w` for another writer',
    );
  }

  private bound(signal: AbortSignal): { signal: AbortSignal; timeoutMs?: number } {
    return this.opts.requestTimeoutMs ? { signal, timeoutMs: this.opts.requestTimeoutMs } : { signal };
  }

  private async readConfigMap(signal: AbortSignal): Promise<V1ConfigMap | null> {
    try {
      return await this.opts.kube.configMaps.get(this.name, this.bound(signal));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async readRaw(
    signal: AbortSignal,
  ): Promise<{ kind: 'absent' } | { kind: 'empty'; cm: V1ConfigMap } | { kind: 'present'; cm: V1ConfigMap; snapshot: Snapshot<S> }> {
    const cm = await this.readConfigMap(signal);
    if (!cm) return { kind: 'absent' };
    const snapshot = this.snapshotOf(cm);
    return snapshot ? { kind: 'present', cm, snapshot } : { kind: 'empty', cm };
  }

  private snapshotOf(cm: V1ConfigMap): Snapshot<S> | null {
    const text = cm.data?.[STATE_KEY];
    if (text === undefined) return null;
    const where = { namespace: this.opts.kube.namespace, name: this.name };
    const env = decodeEnvelope(text, this.opts.decode, where);
    const inner = this.opts.lens?.get(env.state);
    if (inner && inner.term !== env.term) {
      throw new StateCorruptError(where, `the envelope says term ${env.term} but the state says term ${inner.term}`);
    }
    return { term: env.term, coordinator: env.coordinator, state: env.state, updatedAt: env.updatedAt, resourceVersion: cm.metadata?.resourceVersion ?? '' };
  }

  private body(base: V1ConfigMap | undefined, next: NonNullable<EnvelopeChange<S>>): V1ConfigMap {
    const { namespace } = this.opts.kube;
    const data = encodeEnvelope({ schema: STATE_SCHEMA, ...next, updatedAt: new Date().toISOString() });
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: base?.metadata ?? { name: this.name, namespace, labels: { [CLUSTER_LABEL]: this.opts.cluster } },
      data: { ...(base?.data ?? {}), [STATE_KEY]: data },
    };
  }

  private async create(next: NonNullable<EnvelopeChange<S>>, signal: AbortSignal): Promise<Snapshot<S>> {
    const cm = await this.opts.kube.configMaps.create(this.body(undefined, next), this.bound(signal));
    this.opts.logger.info({ configMap: this.name }, 'created the cluster state ConfigMap');
    return this.mustSnapshot(cm);
  }

  private async replace(base: V1ConfigMap, next: NonNullable<EnvelopeChange<S>>, signal: AbortSignal): Promise<Snapshot<S>> {
    // metadata.resourceVersion in the body makes this a compare-and-swap: stale → 409 Conflict.
    const cm = await this.opts.kube.configMaps.replace(this.name, this.body(base, next), this.bound(signal));
    return this.mustSnapshot(cm);
  }

  private mustSnapshot(cm: V1ConfigMap): Snapshot<S> {
    const snap = this.snapshotOf(cm);
    if (!snap) throw new ShoalError(`ConfigMap ${this.name} came back without ${STATE_KEY}`, 'check for a mutating webhook rewriting ConfigMaps');
    return snap;
  }
}
