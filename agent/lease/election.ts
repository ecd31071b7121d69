// Leader election on the Lease `shoal-<cluster>` with client-go's semantics (see timing.ts for the
// rules). The elector cycles candidate → leader → candidate until its signal aborts; a lost
// leadership is announced (onStoppedLeading, and the leader signal aborts) before the renew deadline
// ends, which is before any other pod can consider the lease expired.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/log.js';
import { ShoalError, errorMessage } from '../../common/errors.js';
import { abortAfter } from '../../common/abort.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../common/kube/client.js';
import { isAlreadyExists, isConflict } from '../../common/kube/errors.js';
import { sleep } from '../../common/time.js';
import { microNow, type LeaseApi, type RequestBound, type StoredLease } from './lease-api.js';
import {
  DEFAULT_ELECTION_TIMINGS,
  acquireRetryDelayMs,
  judgeAcquire,
  leadershipValid,
  nextRecord,
  observe,
  releasedRecord,
  renewRequestBudgetMs,
  validateElectionTimings,
  yieldAfterReleaseMs,
  type Candidate,
  type ElectionTimings,
  type Observation,
} from './timing.js';

export interface LeaderElectorOptions {
  api: LeaseApi;
  /** holderIdentity: the pod name. */
  identity: string;
  /** The pod's UID (downward API metadata.uid); '' when unknown. Lets a restarted agent free its earlier process's lease. */
  uid?: string;
  timings?: Partial<ElectionTimings>;
  logger: Logger;
  /** This pod became leader. `signal` aborts the moment it stops leading: pass it to everything the leader starts. */
  onStartedLeading: (signal: AbortSignal) => void;
  /** This pod stopped leading (called before the lease can expire for others). */
  onStoppedLeading: (reason: string) => void;
  /** The observed holder changed ('' = nobody). */
  onNewLeader?: (holder: string) => void;
  /** Write `holderIdentity: ""` when the run signal aborts while leading (default true). */
  releaseOnCancel?: boolean;
  /**
   * Whether this pod may take (holding=false) or keep (holding=true) the lease now, with the reason
   * (default: always). A leader told no steps down and releases the lease at once, so a pod that
   * can act takes over without waiting for it to expire; a candidate told no does not try.
   */
  mayLead?: (holding: boolean) => { ok: boolean; reason: string };
  /** Monotonic milliseconds (tests). */
  clock?: () => number;
  random?: () => number;
}

// heldBy: another pod validly holds the lease (a leader seeing this has lost it).
type Attempt = { held: true } | { held: false; reason: string; heldBy?: string };

export class LeaderElector {
  readonly timings: ElectionTimings;
  private readonly clock: () => number;
  private observation: Observation | undefined;
  private stored: StoredLease | undefined;
  private observedHolder = '';
  private leading = false;
  private renewStartMs = 0;
  private leaderAbort: AbortController | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lastError = '';
  private readonly self: Candidate;
  private ownAcquireTime = '';
  private yieldUntilMs = 0;
  private lastRefusal = '';

  constructor(private readonly opts: LeaderElectorOptions) {
    if (!opts.identity) throw new ShoalError('leader election needs a non-empty identity', 'set POD_NAME (the downward API) for the agent');
    this.self = { identity: opts.identity, uid: opts.uid ?? '' };
    this.timings = validateElectionTimings({ ...DEFAULT_ELECTION_TIMINGS, ...opts.timings });
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** True while this pod holds the lease and its last renewal is within the renew deadline. */
  isLeader(): boolean {
    return this.leading && leadershipValid(this.renewStartMs, this.clock(), this.timings);
  }

  /** The holder last observed in the Lease ('' when free or not yet read). */
  leader(): string {
    return this.observedHolder;
  }

  /** Runs until `signal` aborts; then, if leading, steps down and releases the lease. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.opts.logger;
    while (!signal.aborted) {
      try {
        await this.acquire(signal);
      } catch (err) {
        if (signal.aborted) break;
        throw err; // only programming errors get here: acquire() retries API failures itself
      }
      log.info({ lease: this.opts.identity, transitions: this.stored?.record.leaseTransitions }, 'became coordinator (acquired the lease)');
      this.startLeading();
      const ended = await this.renewWhileLeading(signal);
      this.stopLeading(ended.reason);
      if (ended.release && !signal.aborted) await this.release();
    }
    if (this.opts.releaseOnCancel !== false) await this.release();
  }

  private async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      if (!this.allowed(false)) {
        await sleep(acquireRetryDelayMs(this.timings, this.opts.random), signal);
        continue;
      }
      // A request slower than the renew deadline is useless to a leader anyway: bound it by that.
      const attempt = await this.tryAcquireOrRenew(signal, Math.min(this.timings.renewDeadlineMs, DEFAULT_REQUEST_TIMEOUT_MS));
      if (attempt.held) return;
      await sleep(acquireRetryDelayMs(this.timings, this.opts.random), signal);
    }
  }

  /** Asks mayLead; says a refusal once (not every retry). */
  private allowed(holding: boolean): boolean {
    const may = this.opts.mayLead?.(holding) ?? { ok: true, reason: '' };
    if (!may.ok && may.reason !== this.lastRefusal) this.opts.logger.warn({ reason: may.reason }, holding ? 'stepping down as coordinator' : 'not contending for the coordinator lease');
    if (may.ok && this.lastRefusal !== '') this.opts.logger.info('may contend for the coordinator lease again');
    this.lastRefusal = may.ok ? '' : may.reason;
    return may.ok;
  }

  /** Renews every retryPeriod; returns why leadership ended, and whether to release the lease now. */
  private async renewWhileLeading(signal: AbortSignal): Promise<{ reason: string; release: boolean }> {
    const ended = (reason: string, release = false): { reason: string; release: boolean } => ({ reason, release });
    const leaderSignal = this.leaderAbort?.signal;
    // One combined signal per leadership, not one per renewal: each AbortSignal.any stays linked to
    // its sources until they are collected.
    const leading = leaderSignal ? AbortSignal.any([signal, leaderSignal]) : signal;
    for (;;) {
      try {
        await sleep(this.timings.retryPeriodMs, leading);
      } catch {
        return ended(signal.aborted ? 'shutting down' : 'renew deadline passed without a successful renewal');
      }
      if (!this.allowed(true)) return ended(`may no longer lead: ${this.lastRefusal}`, true);
      const budget = renewRequestBudgetMs(this.renewStartMs, this.clock(), this.timings);
      if (budget <= 0) return ended('renew deadline passed without a successful renewal');
      // The request may not outlive the deadline: a hung API call must not keep us "leading".
      const attempt = await this.tryAcquireOrRenew(leading, Math.min(budget, DEFAULT_REQUEST_TIMEOUT_MS));
      if (signal.aborted) return ended('shutting down');
      if (!this.leading) return ended('renew deadline passed without a successful renewal');
      if (!attempt.held && attempt.heldBy) return ended(`lost the lease: ${attempt.reason}`);
    }
  }

  /**
   * One client-go tryAcquireOrRenew. Returns held=true only after a successful write of ourselves
   * as holder; API failures are logged and reported as not held.
   */
  private async tryAcquireOrRenew(signal: AbortSignal, timeoutMs: number): Promise<Attempt> {
    const { api, identity } = this.opts;
    const bound = { signal, timeoutMs };
    const start = this.clock();
    try {
      // A leader renews with its cached resourceVersion (one request); a 409 falls back to a read.
      if (this.leading && this.stored?.record.holderIdentity === identity) {
        try {
          const written = await api.update(nextRecord(this.stored.record, this.self, microNow(), this.timings), this.stored.resourceVersion, bound);
          this.wrote(written, start);
          return { held: true };
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      const current = await api.get(bound);
      if (!current) {
        try {
          this.wrote(await api.create(nextRecord(undefined, this.self, microNow(), this.timings), bound), start);
          return { held: true };
        } catch (err) {
          if (isAlreadyExists(err)) return { held: false, reason: 'another pod created the lease first' };
          throw err;
        }
      }
      this.stored = current;
      this.observation = observe(this.observation, current.record, this.clock());
      this.noteHolder(current.record.holderIdentity);
      const verdict = judgeAcquire(current.record, this.observation, this.self, this.clock(), {
        leading: this.leading,
        ownAcquireTime: this.ownAcquireTime,
        yieldUntilMs: this.yieldUntilMs,
      });
      if (verdict.action === 'wait') return { held: false, reason: verdict.reason, heldBy: current.record.holderIdentity || undefined };
      if (verdict.action === 'release') return await this.releaseEarlierProcess(current, verdict.reason, bound);
      try {
        const written = await api.update(nextRecord(current.record, this.self, microNow(), this.timings), current.resourceVersion, bound);
        if (verdict.takeover) this.opts.logger.info({ reason: verdict.reason }, 'taking over the coordinator lease');
        this.wrote(written, start);
        return { held: true };
      } catch (err) {
        // Someone wrote between our read and our replace: they won this round.
        if (isConflict(err)) return { held: false, reason: 'lost the race to update the lease (409)' };
        throw err;
      }
    } catch (err) {
      if (signal.aborted) return { held: false, reason: 'aborted' };
      const msg = errorMessage(err);
      // Log a failure once per distinct message: an unreachable API server must not flood the log.
      if (msg !== this.lastError) this.opts.logger.warn({ err: msg }, 'lease request failed; retrying');
      this.lastError = msg;
      return { held: false, reason: msg };
    }
  }

  /** Frees a lease an earlier process of this pod held, then leaves it to peers for a while (timing.ts). */
  private async releaseEarlierProcess(current: StoredLease, reason: string, bound: RequestBound): Promise<Attempt> {
    try {
      this.stored = await this.opts.api.update(releasedRecord(current.record, microNow()), current.resourceVersion, bound);
    } catch (err) {
      if (isConflict(err)) return { held: false, reason: 'the lease changed while we released it (409)' };
      throw err;
    }
    this.observation = observe(this.observation, this.stored.record, this.clock());
    this.noteHolder('');
    const yieldMs = yieldAfterReleaseMs(this.timings);
    this.yieldUntilMs = this.clock() + yieldMs;
    this.opts.logger.info({ reason, yieldMs }, 'released the coordinator lease of an earlier agent process of this pod');
    return { held: false, reason };
  }

  private wrote(stored: StoredLease, startMs: number): void {
    this.lastError = '';
    this.stored = stored;
    this.ownAcquireTime = stored.record.acquireTime;
    this.observation = observe(this.observation, stored.record, this.clock());
    this.noteHolder(stored.record.holderIdentity);
    this.renewStartMs = startMs;
    if (this.leading) this.armDeadline();
  }

  private noteHolder(holder: string): void {
    if (holder === this.observedHolder) return;
    this.observedHolder = holder;
    this.opts.logger.info({ holder: holder || null }, 'coordinator lease holder changed');
    this.callback('onNewLeader', () => this.opts.onNewLeader?.(holder));
  }

  private startLeading(): void {
    this.leading = true;
    this.leaderAbort = new AbortController();
    this.armDeadline();
    const signal = this.leaderAbort.signal;
    this.callback('onStartedLeading', () => this.opts.onStartedLeading(signal));
  }

  // Steps down exactly at the renew deadline even if the renew loop is blocked in a request.
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const left = this.renewStartMs + this.timings.renewDeadlineMs - this.clock();
    this.deadlineTimer = setTimeout(() => this.stopLeading('renew deadline passed without a successful renewal'), Math.max(0, left));
  }

  private stopLeading(reason: string): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    if (!this.leading) return;
    this.leading = false;
    this.leaderAbort?.abort(new ShoalError(`stopped leading: ${reason}`));
    this.opts.logger.warn({ reason }, 'stopped being coordinator');
    this.callback('onStoppedLeading', () => this.opts.onStoppedLeading(reason));
  }

  // A throwing callback is logged, never allowed to break the election loop.
  private callback(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger.error({ err: errorMessage(err), callback: name }, 'leader election callback threw');
    }
  }

  /** Clears the holder if the lease is still ours; one re-read on 409 (an aborted renew may have landed). */
  private async release(): Promise<void> {
    const timeoutMs = Math.min(this.timings.renewDeadlineMs, 5_000);
    // One deadline for the whole release (both attempts), on a timer we hold and clear.
    const deadline = abortAfter(timeoutMs, () => new Error(`the lease release took longer than ${timeoutMs} ms`));
    const bound = { signal: deadline.signal, timeoutMs };
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const stored = attempt === 0 ? this.stored : await this.opts.api.get(bound);
        if (!stored || stored.record.holderIdentity !== this.opts.identity) return;
        try {
          this.stored = await this.opts.api.update(releasedRecord(stored.record, microNow()), stored.resourceVersion, bound);
          this.opts.logger.info('released the coordinator lease');
          return;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, 'could not release the coordinator lease; others take over when it expires');
    } finally {
      deadline.unlink();
    }
  }
}
