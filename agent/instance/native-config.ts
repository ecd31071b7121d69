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
  return {
    ...user,
    credentials: {
      ...credentials,
      users: { ...users, [v.credentials.user]: { password: v.credentials.password, roles: ['replication'] } },
    },
    replication,
    groups: { [v.group]: { replicasets: { [v.replicaset]: replicaset } } },
  };
}

function objectAt(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  return isObject(v) ? v : {};
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
