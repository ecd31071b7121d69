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
}

export interface StatusReplicaSet {
  name: string;
  master: string | null;
  instances: StatusMember[];
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
}
