// The coordinator's eyes, stateful half: collects the live inputs (watch caches, heartbeats as they
// arrive, the local probe), remembers the "since" timestamps between rounds, and prefers the state
// an agent returned in a command's ack over an older heartbeat (so the round after a fence does not
// see the instance writable again and re-plan). observe.ts does the mapping.
import { performance } from 'node:perf_hooks';
import type { InstanceRole } from '../../shared/status.js';
import type { ObservedCluster, ObservedTarantool, PersistedState } from '../coordinator/model.js';
import type { Peer } from '../kube/peers.js';
import type { ReplicaSetSpec } from '../kube/statefulsets.js';
import type { Heartbeat } from '../mesh/protocol.js';
import { observeCluster, type HeardAgent, type Since } from './observe.js';
import { toObservedTarantool, type LocalSnapshot } from './probe.js';

export interface ObserverSources {
  namespace: string;
  cluster: string;
  self: string;
  listenPort: number;
  pods: () => ReadonlyMap<string, Peer>;
  statefulSets: () => ReadonlyMap<string, ReplicaSetSpec>;
  /** The peers this agent's mesh hears now. */
  sees: () => readonly string[];
  local: () => LocalSnapshot;
  /** A heartbeat older than this (on this agent's clock) no longer counts. */
  heartbeatTimeoutMs: number;
  /** Monotonic clock for heartbeat freshness. */
  monotonic?: () => number;
}

interface Received {
  hb: Heartbeat;
  atMono: number;
}

export class Observer {
  private since = new Map<string, Since>();
  private readonly received = new Map<string, Received>();
  // pod → state from a command's ack, valid until a heartbeat sent after it arrives.
  private readonly acked = new Map<string, { tarantool: ObservedTarantool; at: number }>();
  private readonly mono: () => number;

  constructor(private readonly s: ObserverSources) {
    this.mono = s.monotonic ?? (() => performance.now());
  }

  /** Feed every valid heartbeat here (mesh.onHeartbeat). */
  heartbeat(hb: Heartbeat): void {
    this.received.set(hb.pod, { hb, atMono: this.mono() });
    const ack = this.acked.get(hb.pod);
    if (ack && hb.sentAt > ack.at) this.acked.delete(hb.pod);
  }

  /** The state an agent reported with an ack, taken at `at` on its own wall clock. */
  acknowledged(pod: string, tarantool: ObservedTarantool, at: number): void {
    this.acked.set(pod, { tarantool, at });
  }

  /** Forget the round-to-round memory (a new term starts from what it sees). */
  reset(): void {
    this.since = new Map();
    this.acked.clear();
  }

  /** Roles as the agents report them (for /status); self included. */
  roles(): Map<string, InstanceRole> {
    const roles = new Map<string, InstanceRole>();
    for (const [pod, hb] of this.fresh()) roles.set(pod, hb.instance.role);
    roles.set(this.s.self, this.s.local().state?.role ?? 'unconfigured');
    return roles;
  }

  observe(persisted: PersistedState, now: number): ObservedCluster {
    const heard = new Map<string, HeardAgent>();
    for (const [pod, hb] of this.fresh()) {
      const report = hb.instance.tarantool ?? null;
      heard.set(pod, { sees: hb.sees, tarantool: this.acked.get(pod)?.tarantool ?? report });
    }
    const { cluster, since } = observeCluster(
      {
        now,
        namespace: this.s.namespace,
        cluster: this.s.cluster,
        self: this.s.self,
        listenPort: this.s.listenPort,
        pods: this.s.pods(),
        statefulSets: this.s.statefulSets(),
        persisted,
        selfSees: this.s.sees(),
        selfTarantool: toObservedTarantool(this.s.local()),
        heard,
      },
      this.since,
    );
    this.since = since;
    return cluster;
  }

  private *fresh(): Generator<[string, Heartbeat]> {
    const now = this.mono();
    for (const [pod, r] of this.received) {
      if (now - r.atMono <= this.s.heartbeatTimeoutMs) yield [pod, r.hb];
    }
  }
}
