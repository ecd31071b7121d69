// The coordinator's eyes, stateful half: collects the live inputs (watch caches, heartbeats as they
// arrive, the local probe), remembers the "since" timestamps between rounds, and prefers the state
// an agent returned in a command's ack over an older heartbeat (so the round after a fence does not
// see the instance writable again and re-plan). Every agent observes, following or coordinating, so
// a new coordinator knows how long a symptom has lasted. observe.ts does the mapping.
import { performance } from 'node:perf_hooks';
import type { InstanceRole } from '../../common/status.js';
import type { ObservedCluster, ObservedTarantool } from '../decide/model.js';
import type { Peer } from '../kube/peers.js';
import type { ReplicaSetSpec } from '../kube/statefulsets.js';
import type { Heartbeat } from '../wire/mesh-protocol.js';
import { inheritSince, observeCluster, type HeardAgent, type KnownMembers, type Since } from './observation.js';
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
  // When an observation that counted (see observeCluster) last updated `since`.
  private observedAt: number | null = null;
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

  /**
   * A new term: acks belong to the old one; the "since" memory is carried on only as far as
   * inheritSince allows. Returns why, for the log.
   */
  beginTerm(now: number): string {
    this.acked.clear();
    const { since, reason } = inheritSince({ since: this.since, observedAt: this.observedAt }, now, this.s.heartbeatTimeoutMs);
    this.since = since;
    return reason;
  }

  /** Roles as the agents report them (for /status); self included. */
  roles(): Map<string, InstanceRole> {
    const roles = new Map<string, InstanceRole>();
    for (const [pod, hb] of this.fresh()) roles.set(pod, hb.instance.role);
    roles.set(this.s.self, this.s.local().state?.role ?? 'unconfigured');
    return roles;
  }

  /**
   * A follower's observation. Its ticks may stall (event loop): the memory is carried on only as
   * an unbroken run, by the rule a new term applies. (A coordinator's rounds do not apply it: a
   * round that waits on a batch would restart every clock and never fail a dead master over.)
   */
  follow(members: KnownMembers, now: number): ObservedCluster {
    this.since = inheritSince({ since: this.since, observedAt: this.observedAt }, now, this.s.heartbeatTimeoutMs).since;
    return this.observe(members, now);
  }

  /** `members`: the persisted state on the coordinator, the last published topology on a follower. */
  observe(members: KnownMembers, now: number): ObservedCluster {
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
        persisted: members,
        selfSees: this.s.sees(),
        selfTarantool: toObservedTarantool(this.s.local()),
        heard,
      },
      this.since,
    );
    this.since = since ?? new Map();
    this.observedAt = since ? now : null;
    return cluster;
  }

  private *fresh(): Generator<[string, Heartbeat]> {
    const now = this.mono();
    for (const [pod, r] of this.received) {
      if (now - r.atMono <= this.s.heartbeatTimeoutMs) yield [pod, r.hb];
    }
  }
}
