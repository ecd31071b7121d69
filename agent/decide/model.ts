// The coordinator's vocabulary: what it observes, what it persists, what it decides. Types (and
// the one list of values a state decoder needs).
// Everything here is plain JSON (no Maps, no Dates) so persisted state round-trips through the
// ConfigMap and observations can be logged and replayed in tests.

/** box.info.vclock: instance id (as a string) → lsn; its arithmetic is agent/tarantool/vclock.ts. */
import type { DataHazard } from '../tarantool/recovery.js';
import type { Vclock } from '../tarantool/vclock.js';
import type { ShardingRole, ShardingState, VshardReport } from './sharding.js';
export type { Vclock };

/**
 * One upstream of box.info.replication: whom the instance pulls from, and how that goes.
 * divergence.ts classifies it (upstreamCondition): running, stopped (an applier error a restart may
 * heal) or diverged (stopped on a row that conflicts with the instance's data: the data sets differ).
 */
export interface ObservedUpstream {
  /** The peer's instance UUID. */
  uuid: string;
  /** follow, sync, connect, disconnected, loading, stopped, … ("stopped" does not heal by itself). */
  status: string;
  /** upstream.message: the error that stopped it (Tarantool 2.6 shows no error code here). */
  message: string | null;
}

export type { DataHazard } from '../tarantool/recovery.js';

/** What the agent of one pod reports about its Tarantool. */
export interface ObservedTarantool {
  /** box.cfg has run. */
  configured: boolean;
  /** The console answers. */
  alive: boolean;
  ro: boolean;
  /** box.info.status, or `unconfigured` / `configuring` before box.cfg has finished. */
  status: string;
  /**
   * box.info.vclock; for an unconfigured instance the data directory's vclock read offline
   * ({} for an empty directory). null = unknown: the core then never guesses that the data is empty.
   */
  vclock: Vclock | null;
  id: number | null;
  /** Following its master (box.info.replication[master].upstream.status == follow). */
  upstreamOk: boolean;
  /** Every upstream but its own (empty before box.cfg, or from an agent that does not report them). */
  upstreams: readonly ObservedUpstream[];
  /** Replication lag behind the master in milliseconds (null when not following anyone). */
  lagMs: number | null;
  /** box.cfg.replication as URIs `host:port`, credentials stripped. */
  replication: readonly string[];
  synchroQuorum: number | null;
  /** Instance UUIDs in box.space._cluster (null = not read). The master's view decides expel and rejoin. */
  clusterUuids: readonly string[] | null;
  /** Read from the data files before this process's box.cfg; absent or null = none known. */
  hazard?: DataHazard | null;
  /**
   * Tarantool 3's synchronous queue: its owner's box.info.id (0 = unclaimed), term and length. A
   * writable instance that does not own it cannot commit is_sync writes. null/absent: 2.6 or unknown.
   */
  synchro?: SynchroQueue | null;
  /**
   * 3.x native style: `sharding.roles` of the user's config (SPEC §4b), known before box.cfg; [] when
   * it names none. Absent: the Lua style, or an agent that does not report it.
   */
  shardingRoles?: readonly string[];
  /** vshard on a configured instance (bucket counts, a router's view); absent/null: not configured. */
  vshard?: VshardReport | null;
}

export interface SynchroQueue {
  owner: number;
  term: number;
  len: number;
}

/** One pod of a replica set, or one persisted member whose pod is gone (podExists = false). */
export interface ObservedInstance {
  pod: string;
  ordinal: number;
  /** metadata.uid; a recreated pod has a new one. */
  uid: string | null;
  /** UUIDv5 of namespace/cluster/pod (common/identity.ts). */
  instanceUuid: string;
  podExists: boolean;
  podReady: boolean;
  /** metadata.deletionTimestamp is set. */
  deleting: boolean;
  /** The pod's controller-revision-hash. */
  revision: string | null;
  /** `podIP:listenPort` (null while the pod has no IP). */
  uri: string | null;
  /** The coordinator can talk to this pod's agent over the mesh. */
  agentReachable: boolean;
  /** How many mesh peers currently see this pod's agent, out of how many peers (the pod excluded). */
  reachableFrom: { peers: number; of: number };
  /**
   * Since when (observation clock) a mesh majority has continuously been unable to reach this pod's
   * agent; null = reachable now. The observer keeps it with `trackSince` (fencing.ts).
   */
  unreachableSinceMs: number | null;
  /** Since when its Tarantool has continuously not answered (or not existed); null = answering. */
  tarantoolDownSinceMs: number | null;
  /** null when the agent cannot be asked. */
  tarantool: ObservedTarantool | null;
}

export type FailoverMode = 'auto' | 'manual';

/** One opted-in StatefulSet = one replica set. */
export interface ObservedReplicaSet {
  name: string;
  specReplicas: number;
  updateRevision: string;
  failover: FailoverMode;
  paused: boolean;
  /** shoal.dev/sharding-role (SPEC §4b; the instances' configs win over it). Absent: none. */
  shardingAnnotation?: ShardingRole | null;
  /** Every existing pod of the StatefulSet AND every persisted member (podExists = false if gone). */
  instances: readonly ObservedInstance[];
}

export interface ObservedCluster {
  /** Observation time in ms on the coordinator's clock. The core never reads a clock itself. */
  now: number;
  /** Agents the cluster expects (pods with the cluster label) and how many the coordinator reaches, itself included. */
  mesh: { size: number; reachableFromCoordinator: number };
  replicasets: readonly ObservedReplicaSet[];
}

/** A member of a replica set: joined once, not expelled since. */
export interface Member {
  pod: string;
  uuid: string;
  /** box.info.id once observed (the vclock component this instance writes). */
  id: number | null;
}

/** Expelled, with its row in the master's box.space._cluster possibly still to delete. */
export interface ExpelledMember {
  pod: string;
  uuid: string;
}

/**
 * A member that must not re-enter anyone's `replication` until its data has been compared with the
 * master's: an old master after a failover (it may hold writes nobody else has), or an instance that
 * arrived with data of an earlier life. Until then the master must never pull from it.
 */
/**
 * Why a member is quarantined: old-master (replaced by a failover); missed-master-change (down, cut
 * off or ahead of the new master when the master changed, or of the master when it was made writable
 * again in place); arrived-with-data (joined holding data).
 * A state decoder must accept every value here.
 */
export const QUARANTINE_REASONS = ['old-master', 'missed-master-change', 'arrived-with-data'] as const;

/** The steps of a replication repair; a state decoder must accept every value here. */
export const REPAIR_STEPS = ['restarted', 'rebootstrapping', 'rejoining'] as const;

export interface QuarantinedMember {
  pod: string;
  why: (typeof QUARANTINE_REASONS)[number];
  sinceMs: number;
  /** When a rebootstrap was last requested (they are destructive: never re-sent in a tight loop). */
  rebootstrapRequestedAtMs: number | null;
}

/**
 * A replica whose upstream from the master stopped with an error (Tarantool 2.6: e.g. a CONFIRM for
 * a master its empty synchro queue does not know, after a rejoin under synchronous load): its
 * replication is restarted first, then it is rebootstrapped (repair.ts).
 */
export interface ReplicationRepair {
  pod: string;
  /** The upstream's message when the repair began. */
  error: string;
  sinceMs: number;
  /**
   * restarted: its replication was restarted at stepAtMs; rebootstrapping: a rebootstrap was
   * requested then and not yet seen happen; rejoining: it was seen restarting empty then.
   */
  step: (typeof REPAIR_STEPS)[number];
  stepAtMs: number;
  /** Rebootstraps in this repair (bounded: each keeps a copy of the data aside). */
  rebootstraps: number;
  /**
   * Its upstream stopped on a data conflict (divergence.ts): reported, never restarted, rebootstrapped
   * when no other member's rebootstrap is under way. Then `restarted` means reported at stepAtMs and
   * waiting for that turn (a coordinator that predates the field reads it as a restart that did not
   * heal and rebootstraps it). Absent: false.
   */
  diverged?: boolean;
}

/** A planned hand-over in progress: `from` is being made read-only, `to` catches up, then takes over. */
export interface SwitchoverProgress {
  from: string;
  to: string;
  startedAtMs: number;
  reason: string;
}

export interface RolloutProgress {
  /** The updateRevision the rollout is working towards (a new one re-plans). */
  revision: string;
  /** The pod deleted on purpose and not yet back, ready and caught up. */
  inFlight: { pod: string; uid: string | null; deletedAtMs: number } | null;
  /** The master handed over by this rollout (restarted last). */
  oldMaster: string | null;
  startedAtMs: number;
}

export interface PersistedReplicaSet {
  master: string | null;
  members: readonly Member[];
  expelled: readonly ExpelledMember[];
  quarantined: readonly QuarantinedMember[];
  switchover: SwitchoverProgress | null;
  rollout: RolloutProgress | null;
  /**
   * The synchro quorum the master was last seen with (or was promoted with). A master that died
   * before a raised quorum reached it acknowledged writes with fewer copies: promotion must then
   * compare more vclocks (electionQuorum).
   */
  masterQuorum: number | null;
  /** Replicas whose replication is being repaired. */
  repairs: readonly ReplicationRepair[];
}

/** The content of ConfigMap shoal-<cluster>-state (written only with resourceVersion CAS). */
export interface PersistedState {
  /** Grows with every new coordinator and with every master change; agents refuse older terms. */
  term: number;
  coordinator: string | null;
  replicasets: Readonly<Record<string, PersistedReplicaSet>>;
  /** A sharded cluster's own record (SPEC §4b): the buckets' bootstrap. Absent: never sharded. */
  sharding?: ShardingState;
}

/**
 * Every timing of coordination, in milliseconds: the core's own, the shell's loop periods and the
 * agents' command budgets. timings.ts derives them from what is configured and checks their relations.
 */
export interface Timings {
  /** A master unreachable from the mesh majority, or whose Tarantool is silent, this long is replaced. */
  failoverTimeoutMs: number;
  /** Silence after which a mesh peer counts as unreachable (bounds detection skew between the two sides). */
  heartbeatTimeoutMs: number;
  /** Bound on making Tarantool read-only once the agent has decided to (box.cfg takes ~12 ms). */
  fenceApplyMs: number;
  /** How often the agent evaluates shouldSelfFence. */
  agentTickMs: number;
  /** Switchover: how long the candidate may take to reach the old master's vclock (its waitCatchUp's budget). */
  catchUpTimeoutMs: number;
  /** A replica lagging more than this is not healthy (switchover candidate, rollout gate). */
  maxHealthyLagMs: number;
  /** A requested rebootstrap not yet observed done is re-requested after this long. */
  rebootstrapRetryMs: number;
  /** Rollout: a restarted pod not back, ready and caught up after this long blocks the rollout (visibly). */
  podRestartTimeoutMs: number;
  /** How often heartbeats go out and the local probe polls Tarantool (several per heartbeat timeout). */
  heartbeatIntervalMs: number;
  /** Pause between two coordinator rounds. */
  coordinatorIntervalMs: number;
  /** Bound of POST /switchover (answered 504 after it). */
  switchoverTimeoutMs: number;
  /** How long an agent may work on a fence (also the self-fence's bound). */
  fenceBudgetMs: number;
  /** … on a promotion (box.cfg, then clearing the synchronous queue). */
  promoteBudgetMs: number;
  /** … on bootstrapMaster or joinReplica (a first join copies the data). */
  joinBudgetMs: number;
  /** … on a rebootstrap (stop, move the data aside, join from scratch). */
  rebootstrapBudgetMs: number;
  /** … on any other instance command. */
  commandBudgetMs: number;
}

interface ActionBase {
  /** The term this command belongs to: agents refuse it once they have seen a newer one. */
  term: number;
  /** One human sentence: why this action. */
  reason: string;
}

interface InstanceAction extends ActionBase {
  replicaset: string;
  pod: string;
}

/** An instance action its pod's agent carries out. */
interface AgentAction extends InstanceAction {
  /** How long the agent may work on it (decided with the term: batch.ts stamp). */
  budgetMs: number;
}

/** What an instance is told to replicate from (URIs without credentials) and its synchronous quorum. */
export interface ReplicationConfig {
  replication: readonly string[];
  synchroQuorum: number;
}

export type Action =
  /** CAS-write the state. It must succeed before any later action of the batch is sent. */
  | (ActionBase & { kind: 'persist'; state: PersistedState })
  /** First box.cfg of a new replica set's first instance, writable. */
  | (AgentAction & ReplicationConfig & { kind: 'bootstrapMaster' })
  /** box.cfg as a read-only replica (first join, or after a restart). */
  | (AgentAction & ReplicationConfig & { kind: 'joinReplica' })
  /**
   * Change replication / synchro quorum of a running instance; never its read_only. `gate`: later
   * actions depend on it (the master's quorum is raised before a new voter joins).
   */
  | (AgentAction & ReplicationConfig & { kind: 'reconfigure'; gate?: boolean })
  /** On the master `pod`: delete `expelledUuid` from box.space._cluster. */
  | (AgentAction & { kind: 'expel'; expelledPod: string; expelledUuid: string })
  /** box.cfg{read_only = true}; acknowledged only once applied. */
  | (AgentAction & { kind: 'fence' })
  /**
   * box.cfg{replication, read_only = false} then box.ctl.clear_synchro_queue(). `gate`: later
   * actions depend on it (a switchover's old master rejoins only under a new master).
   */
  | (AgentAction & ReplicationConfig & { kind: 'promote'; gate?: boolean })
  /** Block until `pod`'s vclock covers `source`'s vclock as it is after the preceding fence. */
  | (AgentAction & { kind: 'waitCatchUp'; source: string })
  /** Stop, move the data dir aside (kept), start empty with the same instance_uuid, join as a replica. */
  | (AgentAction & ReplicationConfig & { kind: 'rebootstrap' })
  /** A replica's stopped replication is started again: replication emptied, then set back (read-only kept). */
  | (AgentAction & ReplicationConfig & { kind: 'restartReplication' })
  /** A checked (or switched-over, fenced) read-only old master re-enters replication as a replica. */
  | (AgentAction & ReplicationConfig & { kind: 'rejoinAsReplica' })
  /** Rollout: delete the pod (precondition: this uid) so the StatefulSet recreates it. */
  | (InstanceAction & { kind: 'deletePod'; uid: string | null })
  /** On a router: vshard.router.bootstrap() — create the buckets (a cluster that has some answers "found"). */
  | (AgentAction & { kind: 'bootstrapBuckets' })
  /** On a router: vshard.router.master_search_wakeup() — look for storages' masters now, not at the next poll. */
  | (AgentAction & { kind: 'findMasters' })
  /** A Kubernetes Event on the StatefulSet; `reason` is its message. */
  | (ActionBase & { kind: 'event'; replicaset: string; eventType: 'Normal' | 'Warning'; eventReason: string });

export type ActionKind = Action['kind'];

type Unstamped<A> = A extends unknown ? Omit<A, 'term' | 'budgetMs'> : never;
/** What a planner decides: an action before the round stamps it with its term and budget (batch.ts). */
export type PlannedAction = Unstamped<Action>;
