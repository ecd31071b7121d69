// Self-fencing on every agent (SPEC §5): a writable master whose agent has not held a mesh majority
// for the core's fence deadline (derived from the failover timeout, so it always comes first) makes
// its Tarantool read-only at once. A majority counts only peers that hear this agent too (their
// heartbeats say so), so a one-way partition cannot keep a master writable. While it holds one, the
// agent renews the Tarantool watchdog's lease (shoal.lua); the lease runs out by itself when the
// agent dies, hangs or is cut off, and then the instance fences itself. Only the coordinator makes
// an instance writable again (promote). The Kubernetes API plays no part once the pods are known:
// an API outage alone never demotes a master.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { holdsMajority, mayCoordinate, shouldSelfFence, trackSince } from '../decide/fencing.js';
import type { Timings } from '../decide/model.js';
import type { LocalSnapshot } from './probe.js';

export interface MeshView {
  /** Peers this agent hears. */
  sees: readonly string[];
  /** Peers this agent hears that also hear it. */
  mutual: readonly string[];
  /** Peers (self excluded) the pod watch lists. */
  peers: number;
  /** Whether the pod watch has listed the cluster at least once. */
  known: boolean;
}

export interface SelfFencerOptions {
  reachability: () => MeshView;
  local: () => LocalSnapshot;
  fence: () => Promise<unknown>;
  /** Extends the Tarantool watchdog's lease (LocalInstance.renewWatchdog). */
  renewLease: () => Promise<unknown>;
  timings: Timings;
  logger: Logger;
  /** Best effort (the API server may be on the other side of the partition). */
  onFenced: (reason: string) => void;
  clock?: () => number;
}

export class SelfFencer {
  private lostSince: number | null = null;
  private fencing: Promise<void> | null = null;
  private renewing = false;
  private renewedAt = -Infinity;
  private renewFailing = false;
  private lastReason = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;

  constructor(private readonly o: SelfFencerOptions) {
    this.clock = o.clock ?? (() => performance.now());
  }

  start(signal: AbortSignal): void {
    this.timer = setInterval(() => this.tick(), this.o.timings.agentTickMs);
    signal.addEventListener('abort', () => clearInterval(this.timer), { once: true });
  }

  /**
   * Whether this agent may take (holding=false) or keep (holding=true) the coordinator Lease: on the
   * same majority count and loss clock as self-fencing (decide/fencing.ts mayCoordinate).
   */
  mayCoordinate(holding: boolean): { ok: boolean; reason: string } {
    const now = this.clock();
    const { mutual, peers, known } = this.track(now);
    return mayCoordinate({ holding, peersKnown: known, reachablePeers: mutual.length, clusterSize: peers + 1, lostMajoritySinceMs: this.lostSince, now, timings: this.o.timings });
  }

  /** Reads the mesh and keeps the "without a majority since" clock. */
  private track(now: number): MeshView {
    const view = this.o.reachability();
    this.lostSince = trackSince(this.lostSince, !holdsMajority(view.known, view.mutual.length, view.peers + 1), now);
    return view;
  }

  /** One evaluation (exposed for tests). Returns whether a fence was started. */
  tick(): boolean {
    const now = this.clock();
    const { sees, mutual, peers, known } = this.track(now);
    const size = peers + 1;
    const st = this.o.local().state;
    const isMaster = st?.configured === true && st.ro === false;
    const d = shouldSelfFence({ isMaster, reachablePeers: mutual.length, clusterSize: size, peersKnown: known, lostMajoritySinceMs: this.lostSince, now, timings: this.o.timings });
    if (d.renewLease) this.renew(now);
    // Announce the countdown once, not every tick.
    const phase = d.fence ? 'fence' : isMaster && this.lostSince !== null ? 'counting' : 'fine';
    if (phase !== this.lastReason) {
      if (phase === 'counting') this.o.logger.warn({ sees, mutual, peers }, `self-fence countdown: ${d.reason}`);
      if (phase === 'fine' && this.lastReason === 'counting') this.o.logger.info('mesh majority back before the self-fence deadline');
      this.lastReason = phase;
    }
    if (!d.fence || this.fencing) return false;
    this.fencing = this.o
      .fence()
      .then(() => {
        this.o.logger.warn({ sees, mutual, peers }, `self-fenced: ${d.reason}`);
        this.o.onFenced(d.reason);
      })
      .catch((err: unknown) => this.o.logger.error({ err: errorMessage(err) }, 'self-fence failed; retrying on the next tick'))
      .finally(() => {
        this.fencing = null;
      });
    return true;
  }

  /** At most one renewal in flight, one per heartbeat interval: the lease is several intervals long. */
  private renew(now: number): void {
    if (this.renewing || now - this.renewedAt < this.o.timings.heartbeatIntervalMs) return;
    this.renewing = true;
    this.o
      .renewLease()
      .then(() => {
        this.renewedAt = now;
        if (this.renewFailing) this.o.logger.info('watchdog lease renewed again');
        this.renewFailing = false;
      })
      .catch((err: unknown) => {
        // Not fatal by itself: an unrenewed lease fences a master, which is the safe side.
        if (!this.renewFailing) this.o.logger.warn({ err: errorMessage(err) }, 'could not renew the Tarantool watchdog lease; retrying');
        this.renewFailing = true;
      })
      .finally(() => {
        this.renewing = false;
      });
  }
}
