// The 3.x native style (SPEC §4a): the user writes a Tarantool 3 config without topology; Shoal adds
// the cluster part and Tarantool's own config module applies it. This file is the pure half: it
// checks the user's config and renders the whole config one instance needs. Every instance renders
// its own view: its replica set, itself, its leader and the peers it replicates from
// (replication.peers is explicit, so a member the coordinator has not admitted is never contacted).
import { parse } from 'yaml';
import type { JsonValue } from '../console/envelope.js';
import type { ReplicationCredentials } from './uri.js';
import { replicationUri } from './uri.js';
import { roleFromConfigRoles, type ShardingRole } from '../decide/sharding.js';

type JsonObject = { [k: string]: JsonValue };

/** What the agent decides, rendered into the config's cluster part. */
export interface NativeView {
  /** groups.<group>: the Shoal cluster. */
  group: string;
  /** groups.<group>.replicasets.<replicaset>: the StatefulSet. */
  replicaset: string;
  /** This instance: the pod's name (box.info.name). */
  instance: string;
  instanceUuid: string;
  replicasetUuid: string;
  /** iproto.listen of this instance (host:port). */
  listen: string;
  /** host:port of every instance named in the config (this one and its leader at least). */
  members: Record<string, string>;
  /** The replica set's leader (writable under replication.failover = manual); null = nobody. */
  leader: string | null;
  /** host:port this instance replicates from (credentials are added here). */
  peers: string[];
  credentials: ReplicationCredentials;
  synchroQuorum?: number;
  synchroTimeoutS?: number;
  connectTimeoutS?: number;
  syncTimeoutS?: number;
  /**
   * `legacy` for the first start: a replica joins from its master alone, as in the Lua style
   * (`auto` refuses a join that does not list every registered member). `auto` afterwards: a new
   * peer list is tried for connect_timeout and never makes the instance wait for a quorum of it.
   */
  bootstrapStrategy?: 'legacy' | 'auto';
  /** A sharded cluster (SPEC §4b): this replica set's role and every storage replica set. */
  sharding?: ShardedView;
}

/** One storage replica set as every instance's config lists it (vshard finds its master: `master = 'auto'`). */
export interface ShardStorage {
  name: string;
  uuid: string;
  /** Every instance with an address: pod name → its instance UUID and host:port. */
  instances: Record<string, { uuid: string; uri: string }>;
}

/**
 * The sharded part of an instance's view. It holds no masters: the config module gives vshard
 * `master = 'auto'`, so a leader change elsewhere never needs a reload here (TARANTOOL3.md: reloading
 * a router for it costs errors).
 */
export interface ShardedView {
  role: ShardingRole;
  /** Every storage replica set of the cluster, this one included when it is a storage. */
  storages: ShardStorage[];
}

/** The user's config, parsed and checked: problems say what to change. */
export function parseUserConfig(text: string): { config: JsonObject; problems: string[] } {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return { config: {}, problems: [`it is not valid YAML: ${err instanceof Error ? err.message : String(err)}`] };
  }
  if (doc === null || doc === undefined) return { config: {}, problems: [] };
  if (!isObject(doc)) return { config: {}, problems: ['it must be a YAML mapping (Tarantool 3 config options)'] };
  return { config: doc, problems: userConfigProblems(doc) };
}

/** Options Shoal owns: a user's value would fight the coordinator. */
export function userConfigProblems(c: JsonObject): string[] {
  const problems: string[] = [];
  if (c['groups'] !== undefined) {
    problems.push('remove "groups": Shoal supplies the topology (a group per cluster, a replica set per StatefulSet, an instance per pod)');
  }
  const replication = c['replication'];
  if (replication !== undefined && !isObject(replication)) problems.push('"replication" must be a mapping');
  if (isObject(replication)) {
    const failover = replication['failover'];
    if (failover !== undefined && failover !== 'manual') {
      problems.push(`remove replication.failover (${JSON.stringify(failover)}): Shoal is the failover coordinator and sets it to "manual"`);
    }
    if (replication['peers'] !== undefined) problems.push('remove replication.peers: Shoal sets every instance\'s peers');
  }
  const database = c['database'];
  if (isObject(database) && database['mode'] !== undefined) {
    problems.push('remove database.mode: Shoal chooses the writable instance (the replica set\'s leader)');
  }
  return problems;
}

/** The sharding role the user's config gives (`sharding.roles`), with what is wrong in it. */
export function configShardingRole(c: JsonObject): { role: ShardingRole | null; problems: string[] } {
  return roleFromConfigRoles(objectAt(c, 'sharding')['roles']);
}

/** The whole config for one instance: the user's options with the cluster part over them. */
export function renderNativeConfig(user: JsonObject, v: NativeView): JsonObject {
  const instances: JsonObject = {};
  for (const [name, address] of Object.entries(v.members)) {
    instances[name] = { iproto: { listen: [{ uri: address }] } };
  }
  instances[v.instance] = {
    database: { instance_uuid: v.instanceUuid },
    iproto: { listen: [{ uri: v.listen }] },
  };
  const replicaset: JsonObject = { database: { replicaset_uuid: v.replicasetUuid }, instances };
  if (v.leader !== null) replicaset['leader'] = v.leader;

  const replication: JsonObject = {
    ...objectAt(user, 'replication'),
    failover: 'manual',
    peers: v.peers.map((p) => replicationUri(v.credentials, p)),
  };
  if (v.synchroQuorum !== undefined) replication['synchro_quorum'] = v.synchroQuorum;
  if (v.synchroTimeoutS !== undefined) replication['synchro_timeout'] = v.synchroTimeoutS;
  if (v.connectTimeoutS !== undefined) replication['connect_timeout'] = v.connectTimeoutS;
  if (v.syncTimeoutS !== undefined) replication['sync_timeout'] = v.syncTimeoutS;
  if (v.bootstrapStrategy !== undefined) replication['bootstrap_strategy'] = v.bootstrapStrategy;

  const credentials = objectAt(user, 'credentials');
  const users = objectAt(credentials, 'users');
  const rendered: JsonObject = {
    ...user,
    credentials: {
      ...credentials,
      users: { ...users, [v.credentials.user]: { password: v.credentials.password, roles: v.sharding ? ['replication', 'sharding'] : ['replication'] } },
    },
    replication,
    groups: { [v.group]: { replicasets: { [v.replicaset]: replicaset } } },
  };
  return v.sharding ? addSharding(user, rendered, v, v.sharding) : rendered;
}

/**
 * The sharded topology over a rendered config: this replica set carries its role (unless the user's
 * config names it), every storage replica set is listed with all its instances, and vshard connects
 * as Shoal's replication user, which also gets the `sharding` role (iproto.advertise.sharding).
 * Other replica sets are only listed: replication.peers stays exactly this replica set's.
 */
function addSharding(user: JsonObject, rendered: JsonObject, v: NativeView, sh: ShardedView): JsonObject {
  const groups = rendered['groups'] as JsonObject;
  const group = groups[v.group] as JsonObject;
  const replicasets = { ...(group['replicasets'] as JsonObject) };
  const own = replicasets[v.replicaset] as JsonObject;
  const userRoles = objectAt(user, 'sharding')['roles'];
  for (const st of sh.storages) {
    if (st.name === v.replicaset) continue;
    const instances: JsonObject = {};
    for (const [pod, i] of Object.entries(st.instances)) {
      instances[pod] = { database: { instance_uuid: i.uuid }, iproto: { listen: [{ uri: i.uri }] } };
    }
    replicasets[st.name] = { database: { replicaset_uuid: st.uuid }, sharding: { roles: ['storage'] }, instances };
  }
  const ownInstances = { ...(own['instances'] as JsonObject) };
  const ownStorage = sh.role === 'storage' ? sh.storages.find((st) => st.name === v.replicaset) : undefined;
  for (const [pod, i] of Object.entries(ownStorage?.instances ?? {})) {
    ownInstances[pod] ??= { database: { instance_uuid: i.uuid }, iproto: { listen: [{ uri: i.uri }] } };
  }
  replicasets[v.replicaset] = { ...own, ...(userRoles === undefined ? { sharding: { roles: [sh.role] } } : {}), instances: ownInstances };

  const iproto = objectAt(user, 'iproto');
  return {
    ...rendered,
    iproto: { ...iproto, advertise: { ...objectAt(iproto, 'advertise'), sharding: { login: v.credentials.user } } },
    groups: { ...groups, [v.group]: { ...group, replicasets } },
  };
}

function objectAt(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  return isObject(v) ? v : {};
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
