// The JSON of an agent's GET /status (SPEC §4), shared by the agent that serves it and the
// `shoal status` CLI that reads it.

export type InstanceRole = 'master' | 'replica' | 'unconfigured' | 'fenced';
export type RolloutPhase = 'idle' | 'restarting-replicas' | 'switching-master' | 'restarting-old-master' | 'paused';

/** One upstream of box.info.replication: `stopped` with a message is an error that does not heal by itself. */
export interface StatusUpstream {
  uuid: string;
  status: string;
  message: string | null;
}

export interface StatusInstance {
  uuid: string;
  id: number | null;
  listen: string;
  role: InstanceRole;
  ro: boolean | null;
  status: string;
  vclock: Record<string, number>;
  lag: number | null;
  pid: number | null;
  /** Every upstream but its own (absent from agents before it existed). */
  upstreams?: StatusUpstream[];
  /** The running Tarantool's version (null until its console answers; absent from older agents). */
  version?: string | null;
  /** Tarantool 3: the synchronous queue's owner (box.info.id, 0 = unclaimed), term and length; null on 2.6. */
  synchro?: { owner: number; term: number; len: number } | null;
  /** box.info.ro_reason while read-only (config, synchro, orphan…), else null. */
  roReason?: string | null;
  /** Tarantool 3: box.info.name (the pod's name in the native style); null before box.cfg and on 2.6. */
  name?: string | null;
  /** How the application starts: `native` (a Tarantool 3 config, SPEC §4a) or `lua` (require('shoal').cfg). */
  style?: 'lua' | 'native' | null;
}

export interface StatusMember {
  pod: string;
  role: InstanceRole;
  healthy: boolean;
  lag: number | null;
  /** Why it is not healthy, in the coordinator's words (e.g. its upstream's error); absent when healthy. */
  problem?: string;
  /**
   * Its data set differs from the master's: its applier from the master stopped on a conflicting
   * row (or it is being rebootstrapped for that). Absent when not diverged, and from older agents.
   */
  diverged?: StatusDivergence;
}

/** A diverged member, as the coordinator sees it. */
export interface StatusDivergence {
  /** The master it diverged from. */
  from: string;
  /** The applier's error (e.g. `Duplicate key exists in unique index …`). */
  error: string;
  /**
   * Where its repair is: reported (waiting for its turn: one rebootstrap per replica set at a time),
   * rebootstrapping (asked to move its data aside into shoal-diverged-*), rejoining (restarted empty,
   * copying the master's data); null while no repair may run (no settled master).
   */
  repair: DivergenceRepair | null;
}

export const DIVERGENCE_REPAIRS = ['reported', 'rebootstrapping', 'rejoining'] as const;
export type DivergenceRepair = (typeof DIVERGENCE_REPAIRS)[number];

export interface StatusReplicaSet {
  name: string;
  master: string | null;
  instances: StatusMember[];
}

/** A storage replica set's buckets by status (its master's vshard.storage.info().bucket). */
export interface StatusBuckets {
  active: number;
  sending: number;
  receiving: number;
  garbage: number;
}

/** The sharded part of /status (SPEC §4b); null or absent when no replica set has a sharding role. */
export interface StatusSharding {
  /**
   * Every replica set with a role; `buckets` for storages (null while nobody reports them);
   * `problems`: what is wrong with how its role is given (a contradicting annotation, …), when any.
   */
  replicasets: Array<{ name: string; role: 'storage' | 'router'; buckets: StatusBuckets | null; problems?: string[] }>;
  /**
   * The buckets' one bootstrap: waiting (and why), requested through a router, or done —
   * `how`: bootstrapped by this cluster's coordinator, or found already there.
   */
  bootstrap: { state: 'waiting' | 'requested' | 'done'; how: 'bootstrapped' | 'found' | null; by: string | null; atMs: number | null; reason: string };
  /** Each configured router's view: the master it uses per storage replica set (null: none), buckets it cannot reach. */
  routers: Array<{ pod: string; masters: Record<string, string | null>; unknown: number; unreachable: number }>;
}

export interface AgentStatus {
  cluster: string;
  namespace: string;
  pod: string;
  replicaset: string;
  instance: StatusInstance;
  coordinator: { pod: string | null; term: number; self: boolean };
  mesh: Array<{ pod: string; connected: boolean; lastSeenMs: number | null }>;
  replicasets: StatusReplicaSet[];
  rollout: { replicaset: string | null; phase: RolloutPhase; next: string | null; reason?: string } | null;
  /** A sharded cluster (SPEC §4b); absent from agents before it existed and when nothing is sharded. */
  sharding?: StatusSharding | null;
}
