// The JSON of an agent's GET /status (SPEC §4), shared by the agent that serves it and the
// `shoal status` CLI that reads it.

export type InstanceRole = 'master' | 'replica' | 'unconfigured' | 'fenced';
export type RolloutPhase = 'idle' | 'restarting-replicas' | 'switching-master' | 'restarting-old-master' | 'paused';

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
}

export interface StatusMember {
  pod: string;
  role: InstanceRole;
  healthy: boolean;
  lag: number | null;
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
