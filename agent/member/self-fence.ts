// Self-fencing on every agent (SPEC §5): a writable master whose agent has not heard a mesh majority
// for the core's fence deadline (derived from the failover timeout, so it always comes first) makes
// its Tarantool read-only at once. Only the coordinator makes it writable again (promote). The
// Kubernetes API plays no part: an API outage alone never demotes a master.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { inMajority, shouldSelfFence, trackSince } from '../decide/fencing.js';
import type { Timings } from '../decide/model.js';
import type { LocalSnapshot } from './probe.js';

export interface SelfFencerOptions {
  reachability: () => { sees: readonly string[]; peers: number };
  local: () => LocalSnapshot;
  fence: () => Promise<unknown>;
  timings: Timings;
  logger: Logger;
  /** Best effort (the API server may be on the other side of the partition). */
  onFenced: (reason: string) => void;
  clock?: () => number;
}

export class SelfFencer {
  private lostSince: number | null = null;
  private fencing: Promise<void> | null = null;
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

  /** One evaluation (exposed for tests). Returns whether a fence was started. */
  tick(): boolean {
    const now = this.clock();
    const { sees, peers } = this.o.reachability();
    const size = peers + 1;
    this.lostSince = trackSince(this.lostSince, !inMajority(sees.length, size), now);
    const st = this.o.local().state;
    const isMaster = st?.configured === true && st.ro === false;
    const d = shouldSelfFence({ isMaster, reachablePeers: sees.length, clusterSize: size, lostMajoritySinceMs: this.lostSince, now, timings: this.o.timings });
    // Announce the countdown once, not every tick.
    const phase = d.fence ? 'fence' : isMaster && this.lostSince !== null ? 'counting' : 'fine';
    if (phase !== this.lastReason) {
      if (phase === 'counting') this.o.logger.warn({ sees, peers }, `self-fence countdown: ${d.reason}`);
      if (phase === 'fine' && this.lastReason === 'counting') this.o.logger.info('mesh majority back before the self-fence deadline');
      this.lastReason = phase;
    }
    if (!d.fence || this.fencing) return false;
    this.fencing = this.o
      .fence()
      .then(() => {
        this.o.logger.warn({ sees, peers }, `self-fenced: ${d.reason}`);
        this.o.onFenced(d.reason);
      })
      .catch((err: unknown) => this.o.logger.error({ err: errorMessage(err) }, 'self-fence failed; retrying on the next tick'))
      .finally(() => {
        this.fencing = null;
      });
    return true;
  }
}
