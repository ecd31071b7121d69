// Every agent's end of the coordinator's publication: keeps the latest cluster view for /status
// (so /status says the same from any pod) and hands the topology to Tarantool's on_topology hooks
// whenever it changes — and again when Tarantool restarted (a new process has no topology).
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { stableJson } from '../decide/batch.js';
import type { ClusterStatus } from '../http/status.js';
import type { Bounded, TopologyDelivery } from '../instance/local.js';
import type { PeerStatus } from '../mesh/mesh.js';
import type { JsonValue, TopologyPush } from '../wire/mesh-protocol.js';
import type { KnownMembers } from './observation.js';
import type { LocalSnapshot } from './probe.js';
import { decodeTopologyMessage, shardedViewFor, type ClusterView, type TarantoolTopology } from '../wire/cluster-view.js';
import type { ShardedView } from '../instance/native-config.js';

export interface TopologyReceiverOptions {
  /** LocalInstance.topology. */
  deliver: (topology: JsonValue, o: Bounded) => Promise<TopologyDelivery>;
  /** LocalInstance.setSharding: the sharded view its native config lists (SPEC §4b); false = not the native style. */
  shard?: (view: ShardedView | null, o: Bounded) => Promise<boolean>;
  logger: Logger;
  /** This pod's replica set (its rollout is shown when no other is under way). */
  replicaset: string;
  peers: () => PeerStatus[];
  /** The newest term this agent knows (the mesh's). */
  knownTerm: () => number;
  /** The Lease holder as last observed ('' = none) and whether it is this pod. */
  leader: () => { pod: string; self: boolean };
  /** Pause between failed deliveries. */
  retryMs?: number;
}

export class TopologyReceiver {
  private view: ClusterView | null = null;
  private topology: TarantoolTopology | null = null;
  private topologyKey = '';
  private delivered = '';
  private delivering = false;
  private lastFailureAt = 0;
  private pid: number | null = null;
  /** The sharded view last handed to the instance, and the one to hand over (null: none). */
  private shardApplied: string | null = null;
  private shardView: ShardedView | null = null;
  private sharding = false;
  private shardFailedAt = 0;

  constructor(private readonly o: TopologyReceiverOptions) {}

  /** mesh.onTopology: the push's term was accepted by the mesh. */
  receive(push: TopologyPush): void {
    let msg;
    try {
      msg = decodeTopologyMessage(push.topology);
    } catch (err) {
      this.o.logger.warn({ err: errorMessage(err), from: push.from }, 'ignored a topology push');
      return;
    }
    if (this.view && msg.view.term < this.view.term) return;
    this.view = msg.view;
    const key = stableJson(msg.topology);
    if (key !== this.topologyKey) {
      this.topology = msg.topology;
      this.topologyKey = key;
      this.o.logger.info({ term: msg.view.term, replicasets: msg.topology.replicasets.map((r) => `${r.name}:${r.master ?? '-'}`) }, 'cluster topology changed');
    }
    this.shardView = shardedViewFor(msg.topology, this.o.replicaset, this.shardView);
    void this.maybeDeliver();
    void this.maybeShard();
  }

  /** Hands a changed sharded view to the instance (a reload when configured); retried after a failure. */
  private async maybeShard(): Promise<void> {
    const shard = this.o.shard;
    if (!shard || this.sharding) return;
    const view = this.shardView;
    const key = stableJson(view);
    // Nothing sharded was ever applied and nothing is: a plain replica set stays untouched.
    if (key === (this.shardApplied ?? 'null') || Date.now() - this.shardFailedAt < (this.o.retryMs ?? 1_000)) return;
    this.sharding = true;
    try {
      const applied = await shard(view, { timeoutMs: 30_000 });
      this.shardApplied = key;
      if (applied) this.o.logger.info({ role: view?.role ?? null, storages: view?.storages.map((s) => s.name) ?? [] }, 'sharded topology handed to the instance');
    } catch (err) {
      this.shardFailedAt = Date.now();
      this.o.logger.warn({ err: errorMessage(err) }, 'could not hand the sharded topology to the instance; retrying');
    } finally {
      this.sharding = false;
    }
    if (stableJson(this.shardView) !== this.shardApplied) void this.maybeShard();
  }

  /** Feed every local snapshot: a restarted Tarantool (new pid) gets the topology again. */
  local(s: LocalSnapshot): void {
    this.pid = s.state?.pid ?? null;
    void this.maybeDeliver();
    void this.maybeShard();
  }

  latestView(): ClusterView | null {
    return this.view;
  }

  /** The persisted master of `replicaset` as last published (undefined = no view yet). */
  masterOf(replicaset: string): string | null | undefined {
    if (!this.view) return undefined;
    return this.view.replicasets.find((r) => r.name === replicaset)?.master ?? null;
  }

  /** Each replica set's members as last published (none before a publication). */
  knownMembers(): KnownMembers {
    const replicasets: Record<string, { members: Array<{ pod: string; uuid: string }> }> = {};
    for (const rs of this.topology?.replicasets ?? []) replicasets[rs.name] = { members: rs.instances.map((i) => ({ pod: i.pod, uuid: i.uuid })) };
    return { replicasets };
  }

  clusterStatus(): ClusterStatus {
    const leader = this.o.leader();
    const v = this.view;
    const rollouts = v?.rollouts ?? [];
    const rollout = rollouts.find((r) => r.phase !== 'idle') ?? rollouts.find((r) => r.replicaset === this.o.replicaset) ?? null;
    return {
      coordinator: { pod: leader.pod || v?.coordinator || null, term: Math.max(v?.term ?? 0, this.o.knownTerm()), self: leader.self },
      mesh: this.o.peers().map((p) => ({ pod: p.pod, connected: p.connected, lastSeenMs: p.lastSeenMs })),
      replicasets: v?.replicasets ?? [],
      rollout,
      ...(v?.sharding ? { sharding: v.sharding } : {}),
    };
  }

  private async maybeDeliver(): Promise<void> {
    const topology = this.topology;
    if (topology === null || this.pid === null || this.delivering) return;
    const key = `${this.pid}/${this.topologyKey}`;
    if (key === this.delivered || Date.now() - this.lastFailureAt < (this.o.retryMs ?? 1_000)) return;
    this.delivering = true;
    try {
      const r = await this.o.deliver(JSON.parse(this.topologyKey) as JsonValue, { timeoutMs: 5_000 });
      this.delivered = key;
      if (r.errors.length > 0) this.o.logger.warn({ errors: r.errors, hooks: r.hooks }, 'on_topology hooks failed');
      else this.o.logger.info({ version: r.version, hooks: r.hooks }, 'topology delivered to Tarantool');
    } catch (err) {
      this.lastFailureAt = Date.now();
      this.o.logger.warn({ err: errorMessage(err) }, 'could not deliver the topology to Tarantool; retrying');
    } finally {
      this.delivering = false;
    }
    // It may have changed while we were delivering.
    if (this.topologyKey && `${this.pid}/${this.topologyKey}` !== this.delivered) void this.maybeDeliver();
  }
}
