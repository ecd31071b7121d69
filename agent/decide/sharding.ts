// Sharded clusters (SPEC §4b): which vshard role a replica set plays. Pure.
//
// A StatefulSet's role comes from the objects users already write: its Tarantool 3 config
// (`sharding.roles`, what Tarantool's own config module applies) or the StatefulSet annotation
// `shoal.dev/sharding-role`. The config wins: it is what actually configures vshard in the process;
// an annotation that contradicts it is reported, never obeyed. The annotation alone gives the role
// to a config that says nothing (Shoal then writes `sharding.roles` into the config it renders).

/** A replica set of a sharded cluster holds buckets (`storage`) or routes requests (`router`). */
export type ShardingRole = 'storage' | 'router';

export const SHARDING_ROLES: readonly ShardingRole[] = ['storage', 'router'];

/** Where the role was read. */
export type ShardingRoleSource = 'config' | 'annotation';

export interface ResolvedShardingRole {
  /** null: not part of a sharded cluster (a plain replica set, as before sharding). */
  role: ShardingRole | null;
  source: ShardingRoleSource | null;
  /** Sentences for a Warning Event: what is wrong and what to change. Never fatal. */
  problems: string[];
}

/**
 * `sharding.roles` of a Tarantool 3 config as Shoal reads it: absent (undefined) or a list of
 * strings. `rebalancer` rides along with `storage`; a replica set that is both storage and router
 * is not supported (one StatefulSet, one role).
 */
export function roleFromConfigRoles(roles: unknown): { role: ShardingRole | null; problems: string[] } {
  if (roles === undefined || roles === null) return { role: null, problems: [] };
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string')) {
    return { role: null, problems: ['sharding.roles in the Tarantool config must be a list of role names (storage, router, rebalancer)'] };
  }
  const names = roles as string[];
  const unknown = names.filter((r) => r !== 'storage' && r !== 'router' && r !== 'rebalancer');
  const problems = unknown.map((r) => `sharding.roles in the Tarantool config names ${JSON.stringify(r)}: Tarantool knows storage, router and rebalancer`);
  const storage = names.includes('storage');
  const router = names.includes('router');
  if (storage && router) {
    return { role: null, problems: [...problems, 'sharding.roles names both storage and router: give each StatefulSet one role (storages hold buckets, routers hold no data)'] };
  }
  if (names.includes('rebalancer') && !storage) problems.push('sharding.roles names rebalancer without storage: only a storage can be the rebalancer');
  return { role: storage ? 'storage' : router ? 'router' : null, problems };
}

/** The annotation's value as Shoal reads it: absent, or exactly `storage` / `router`. */
export function roleFromAnnotation(value: string | undefined, annotation: string): { role: ShardingRole | null; problems: string[] } {
  if (value === undefined) return { role: null, problems: [] };
  if (value === 'storage' || value === 'router') return { role: value, problems: [] };
  return { role: null, problems: [`annotation ${annotation}=${JSON.stringify(value)} is neither "storage" nor "router"; ignoring it`] };
}

/**
 * The role of a replica set from both sources: the config's role when it names one, else the
 * annotation's; a disagreement keeps the config's and says so.
 */
export function resolveShardingRole(
  config: { role: ShardingRole | null; problems: readonly string[] } | null,
  annotation: { role: ShardingRole | null; problems: readonly string[] },
  annotationName: string,
): ResolvedShardingRole {
  const problems = [...(config?.problems ?? []), ...annotation.problems];
  const fromConfig = config?.role ?? null;
  if (fromConfig !== null) {
    if (annotation.role !== null && annotation.role !== fromConfig) {
      problems.push(
        `annotation ${annotationName}=${annotation.role} contradicts sharding.roles (${fromConfig}) in the Tarantool config; ` +
          `the config wins (it is what configures vshard): remove or correct the annotation`,
      );
    }
    return { role: fromConfig, source: 'config', problems };
  }
  if (annotation.role !== null) return { role: annotation.role, source: 'annotation', problems };
  return { role: null, source: null, problems };
}

/**
 * Roles the instances of one replica set reported from their configs (null: the config names no
 * role, undefined: not reported yet). They come from one StatefulSet template and so agree; while a
 * rollout changes the template they may not: the role of the up-to-date majority is not knowable
 * here, so the replica set keeps no role from the config until they agree (problem reported).
 */
export function agreeOnConfigRole(
  reported: ReadonlyArray<{ pod: string; role: ShardingRole | null; problems: readonly string[] } | undefined>,
): { role: ShardingRole | null; problems: string[] } | null {
  const known = reported.filter((r): r is { pod: string; role: ShardingRole | null; problems: readonly string[] } => r !== undefined);
  if (known.length === 0) return null;
  const roles = new Set(known.map((r) => r.role));
  const problems = [...new Set(known.flatMap((r) => r.problems))];
  if (roles.size === 1) return { role: known[0]?.role ?? null, problems };
  const detail = known.map((r) => `${r.pod}: ${r.role ?? 'none'}`).join(', ');
  return { role: null, problems: [...problems, `the instances' configs name different sharding roles (${detail}); waiting until they agree`] };
}

/** A storage's buckets by status (vshard.storage.info().bucket). */
export type BucketCounts = {
  active: number;
  sending: number;
  receiving: number;
  garbage: number;
  pinned: number;
  total: number;
};

/** A router's view (vshard.router.info()): each storage replica set's master it uses (null: none), buckets it cannot reach. */
export type RouterView = {
  masters: Readonly<Record<string, string | null>>;
  unknown: number;
  unreachable: number;
  availableRw: number;
};

/** What vshard says on one configured instance; each part absent where that side is not configured. */
export type VshardReport = {
  storage?: BucketCounts;
  router?: RouterView;
};

/** The persisted record of the buckets' bootstrap (state ConfigMap, `sharding`). */
export interface BucketBootstrap {
  /**
   * requested: `router` was asked at `atMs` and no bucket was seen yet; done: buckets exist —
   * `how` says whether this cluster's coordinator created them (bootstrapped) or found them there.
   */
  state: 'requested' | 'done';
  how: 'bootstrapped' | 'found' | null;
  /** The router asked (requested, bootstrapped) or the storage instance seen holding buckets (found). */
  by: string;
  atMs: number;
}

export interface ShardingState {
  bootstrap: BucketBootstrap | null;
}

export const BOOTSTRAP_STATES = ['requested', 'done'] as const;
export const BOOTSTRAP_HOWS = ['bootstrapped', 'found'] as const;
