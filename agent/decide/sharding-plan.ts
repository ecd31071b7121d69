import { podList } from './format.js';
import type { ObservedCluster, ObservedInstance, ObservedReplicaSet, PersistedState, PlannedAction } from './model.js';
import { agreeOnConfigRole, resolveShardingRole, roleFromConfigRoles, type ResolvedShardingRole, type ShardingRole, type ShardingState } from './sharding.js';
import { note, type Step } from './step.js';
import type { PersistedReplicaSet } from './model.js';

// Sharded clusters (SPEC §4b), the coordinator's part. Pure.
// - Each replica set's role: its instances' configs (sharding.roles), else the StatefulSet annotation.
// - Routers hold no data and have no master: each router pod is configured on its own (its own
//   leader, replicating from nobody); none of the replica-set planners (failover, join, …) touch them.
// - The buckets are bootstrapped once per cluster: when every storage replica set has a writable
//   master that owns its synchronous queue and runs vshard, one router that sees them all is asked to
//   vshard.router.bootstrap(); the request and its outcome are persisted, so a new coordinator neither
//   repeats nor forgets it, and buckets found already there are recorded instead of recreated.

export const SHARDING_ANNOTATION = 'shoal.dev/sharding-role';

/** The role of one replica set from what its instances report and its StatefulSet says. */
export function replicaSetRole(rs: ObservedReplicaSet): ResolvedShardingRole {
  const reported = rs.instances
    .filter((i) => i.podExists)
    .map((i) => (i.tarantool?.shardingRoles === undefined ? undefined : { pod: i.pod, ...roleFromConfigRoles(i.tarantool.shardingRoles) }));
  return resolveShardingRole(agreeOnConfigRole(reported), { role: rs.shardingAnnotation ?? null, problems: [] }, SHARDING_ANNOTATION);
}

/** Every replica set's role (null: not sharded). */
export function clusterRoles(observed: ObservedCluster): Record<string, ShardingRole | null> {
  return Object.fromEntries(observed.replicasets.map((rs) => [rs.name, replicaSetRole(rs).role]));
}

const upAndAnswering = (i: ObservedInstance): boolean =>
  i.podExists && !i.deleting && i.agentReachable && i.unreachableSinceMs === null && i.uri !== null && i.tarantool?.alive === true;

/**
 * A router replica set's round: every router pod not yet configured is configured on its own (it
 * holds no data, follows nobody and is nobody's replica); a configured router made read-only (a
 * self-fence while cut off) is made writable again. Nothing is persisted for routers.
 */
export function planRouters(rs: ObservedReplicaSet, state: PersistedReplicaSet): Step {
  const commands: PlannedAction[] = [];
  const reasons: string[] = [];
  for (const i of rs.instances) {
    if (!upAndAnswering(i) || i.uri === null || i.ordinal >= rs.specReplicas) continue;
    const t = i.tarantool;
    if (t?.status === 'unconfigured') {
      const reason = `router ${i.pod} holds no data: configuring it on its own (no master, no replication)`;
      commands.push({ kind: 'bootstrapMaster', replicaset: rs.name, pod: i.pod, reason, replication: [i.uri], synchroQuorum: 1 });
      reasons.push(reason);
    } else if (t?.configured === true && t.ro) {
      const reason = `router ${i.pod} is read-only (fenced while cut off?): a router has no master to hand over to, making it writable again`;
      commands.push({ kind: 'promote', replicaset: rs.name, pod: i.pod, reason, replication: [i.uri], synchroQuorum: 1 });
      reasons.push(reason);
    }
  }
  if (commands.length === 0) {
    const up = rs.instances.filter((i) => i.tarantool?.configured === true).map((i) => i.pod);
    return note(state, `routers: ${up.length > 0 ? `${podList(up)} configured` : 'none configured yet'}`);
  }
  return { state, commands, bumpTerm: false, reason: reasons.join('; '), final: true };
}

export interface ShardingPlan {
  next: ShardingState | undefined;
  commands: PlannedAction[];
  reason: string;
}

/**
 * Routers told to look for masters now (SPEC §4b): when this round promotes a storage's new master,
 * every configured router is asked, after the promotes in the batch, to run vshard's master search
 * at once — otherwise it finds the new master only at its next poll or on a caller's failed request.
 * `steps`: the round's replica-set steps (their commands run before these).
 */
export function planRouterWakeups(
  observed: ObservedCluster,
  roles: Readonly<Record<string, ShardingRole | null>>,
  steps: Readonly<Record<string, Step>>,
): PlannedAction[] {
  const promoted = observed.replicasets
    .filter((rs) => roles[rs.name] === 'storage')
    .flatMap((rs) => {
      const step = steps[rs.name];
      const commands = [...(step?.commands ?? []), ...(step?.handover?.commands ?? [])];
      return commands.filter((c) => c.kind === 'promote').map((c) => `${c.pod} of ${rs.name}`);
    });
  if (promoted.length === 0) return [];
  return observed.replicasets
    .filter((rs) => roles[rs.name] === 'router')
    .flatMap((rs) =>
      rs.instances
        .filter((i) => upAndAnswering(i) && i.tarantool?.configured === true && i.tarantool.vshard?.router !== undefined)
        .map((i): PlannedAction => ({
          kind: 'findMasters',
          replicaset: rs.name,
          pod: i.pod,
          reason: `a storage master was promoted (${promoted.join(', ')}): router ${i.pod} looks for masters now, not at its next poll`,
        })),
    );
}

/** The storage instance that holds buckets, if any reports some: the buckets exist. */
function holderOfBuckets(storages: readonly ObservedReplicaSet[]): ObservedInstance | undefined {
  for (const rs of storages) {
    for (const i of rs.instances) if ((i.tarantool?.vshard?.storage?.total ?? 0) > 0) return i;
  }
  return undefined;
}

/** Why this storage replica set cannot take buckets yet, or null when its master can. */
function storageNotReady(rs: ObservedReplicaSet, persisted: PersistedState): string | null {
  const master = persisted.replicasets[rs.name]?.master ?? null;
  if (master === null) return `${rs.name} has no master yet`;
  const t = rs.instances.find((i) => i.pod === master)?.tarantool;
  if (!t?.configured || t.ro) return `${rs.name}'s master ${master} is not writable yet`;
  // TARANTOOL3.md: a storage whose master has not claimed the synchronous queue cannot take buckets.
  if (t.synchro && t.id !== null && t.synchro.owner !== t.id) return `${rs.name}'s master ${master} does not own the synchronous queue yet`;
  if (!t.vshard?.storage) return `${rs.name}'s master ${master} does not run vshard's storage yet`;
  return null;
}

/** A router that runs vshard and reaches every storage's master. */
function readyRouter(routers: readonly ObservedReplicaSet[], storages: readonly ObservedReplicaSet[], persisted: PersistedState): ObservedInstance | undefined {
  const candidates = routers
    .flatMap((rs) => rs.instances)
    .filter((i) => upAndAnswering(i) && i.tarantool?.configured === true && i.tarantool.vshard?.router !== undefined)
    .sort((a, b) => (a.pod < b.pod ? -1 : 1));
  return candidates.find((i) => {
    const masters = i.tarantool?.vshard?.router?.masters ?? {};
    return storages.every((rs) => masters[rs.name] === persisted.replicasets[rs.name]?.master);
  });
}

/**
 * The buckets' bootstrap, once per cluster. `roles` from clusterRoles. Retries a request that showed
 * no bucket after `retryMs` (vshard refuses a second bootstrap of a non-empty cluster: NON_EMPTY, which
 * the agent reports as found).
 */
export function planBucketBootstrap(
  observed: ObservedCluster,
  persisted: PersistedState,
  roles: Readonly<Record<string, ShardingRole | null>>,
  retryMs: number,
): ShardingPlan {
  const current = persisted.sharding;
  const storages = observed.replicasets.filter((rs) => roles[rs.name] === 'storage');
  const routers = observed.replicasets.filter((rs) => roles[rs.name] === 'router');
  const nothing = (reason: string): ShardingPlan => ({ next: current, commands: [], reason });
  if (storages.length === 0 && routers.length === 0) return nothing('');
  const done = current?.bootstrap?.state === 'done' ? current.bootstrap : null;
  if (done) return nothing(`buckets ${done.how === 'found' ? `found on ${done.by}` : `bootstrapped through ${done.by}`}`);
  const holder = holderOfBuckets(storages);
  if (holder) {
    const requested = current?.bootstrap?.state === 'requested' ? current.bootstrap : null;
    const bootstrap = requested
      ? { state: 'done' as const, how: 'bootstrapped' as const, by: requested.by, atMs: observed.now }
      : { state: 'done' as const, how: 'found' as const, by: holder.pod, atMs: observed.now };
    const reason = requested
      ? `the buckets ${requested.by} was asked to create are there (${holder.pod} holds some): recording the bootstrap as done`
      : `${holder.pod} already holds buckets: recording the bootstrap as done, not repeating it`;
    return { next: { ...current, bootstrap }, commands: [], reason };
  }
  if (storages.length === 0) return nothing('no storage replica set yet: buckets wait');
  if (routers.length === 0) return nothing('no router replica set yet: buckets wait');
  const waiting = storages.map((rs) => storageNotReady(rs, persisted)).filter((w): w is string => w !== null);
  if (waiting.length > 0) return nothing(`buckets wait: ${waiting.join('; ')}`);
  const router = readyRouter(routers, storages, persisted);
  if (!router) return nothing(`buckets wait: no router runs vshard and sees the master of every storage (${storages.map((rs) => rs.name).join(', ')}) yet`);
  const requested = current?.bootstrap?.state === 'requested' ? current.bootstrap : null;
  if (requested && observed.now - requested.atMs < retryMs) return nothing(`buckets requested through ${requested.by}; waiting to see them`);
  const rsOfRouter = routers.find((rs) => rs.instances.includes(router));
  const reason = `${requested ? 'again, no bucket seen yet: ' : ''}every storage replica set (${storages.map((rs) => rs.name).join(', ')}) has a writable master: asking router ${router.pod} to bootstrap the buckets`;
  return {
    next: { ...current, bootstrap: { state: 'requested', how: null, by: router.pod, atMs: observed.now } },
    commands: [
      { kind: 'event', replicaset: rsOfRouter?.name ?? router.pod, eventType: 'Normal', eventReason: 'BucketsBootstrap', reason },
      { kind: 'bootstrapBuckets', replicaset: rsOfRouter?.name ?? router.pod, pod: router.pod, reason },
    ],
    reason,
  };
}
