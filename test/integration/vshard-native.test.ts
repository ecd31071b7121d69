// A sharded cluster from the configs Shoal renders (SPEC §4b), with real Tarantool 3.8 and the
// vendored vshard 0.1.42: two storage replica sets and a router, each instance given the sharded
// topology by its LocalInstance (the agent's hands), Tarantool's config module configuring vshard.
// Buckets exist only after one router's vshard.router.bootstrap() (TARANTOOL3.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShardedView, ShardStorage } from '../../agent/instance/native-config.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const BUCKETS = 30;
const STORAGE_APP = `
-- A storage's application: the synchronous space kv {key, bucket_id, value} and what routers call.
if not box.info.ro then
  local kv = box.schema.space.create('kv', {if_not_exists = true, is_sync = true,
    format = {{'key', 'string'}, {'bucket_id', 'unsigned'}, {'value', 'any'}}})
  kv:create_index('pk', {if_not_exists = true, parts = {'key'}})
  kv:create_index('bucket_id', {if_not_exists = true, parts = {'bucket_id'}, unique = false})
end
function kv_store(key, bucket_id, value) box.space.kv:replace({key, bucket_id, value}) return true end
function kv_fetch(key) local t = box.space.kv:get(key) return t and t[3] end
`;
const ROUTER_APP = `
-- A router's application: kv_put / kv_get through vshard.
function kv_put(key, value)
  local vshard = require('vshard')
  local b = vshard.router.bucket_id_strcrc32(key)
  local ok, err = vshard.router.callrw(b, 'kv_store', {key, b, value}, {timeout = 10})
  if err ~= nil then error(err) end
  return ok == true
end
function kv_get(key)
  local vshard = require('vshard')
  local b = vshard.router.bucket_id_strcrc32(key)
  local v, err = vshard.router.callrw(b, 'kv_fetch', {key}, {timeout = 10})
  if err ~= nil then error(err) end
  return v
end
`;
const config = (roles: string) => `credentials:
  users:
    app:
      password: app-secret
      roles: [super]
sharding:
  bucket_count: ${BUCKETS}
${roles}`;

describe('a sharded cluster from the native configs Shoal renders', () => {
  const fleet = new TarantoolFleet();
  let a0: Node;
  let a1: Node;
  let b0: Node;
  let r0: Node;
  const storage = (name: string, nodes: Node[]): ShardStorage => ({
    name,
    uuid: nodes[0]!.inst.identity.replicasetUuid,
    instances: Object.fromEntries(nodes.map((n) => [n.t.name, { uuid: n.inst.identity.instanceUuid, uri: n.t.address }])),
  });

  beforeAll(async () => {
    // Storages name their role in the config; the router's comes from "the annotation" (the view).
    const st = { config: config('  roles: [storage]\n'), app: STORAGE_APP };
    [a0, a1, b0, r0] = await Promise.all([
      fleet.node('storage-a-0', { lane: '3', native: st, replicaset: 'storage-a' }),
      fleet.node('storage-a-1', { lane: '3', native: st, replicaset: 'storage-a' }),
      fleet.node('storage-b-0', { lane: '3', native: st, replicaset: 'storage-b' }),
      fleet.node('router-0', { lane: '3', native: { config: config(''), app: ROUTER_APP }, replicaset: 'router' }),
    ]);
  });
  afterAll(() => fleet.cleanup());

  it('configures vshard on every instance from the topology, before and after the first config', async () => {
    const storages = [storage('storage-a', [a0, a1]), storage('storage-b', [b0])];
    const view = (role: ShardedView['role']): ShardedView => ({ role, storages });
    // Before box.cfg: kept for the first config.
    expect(await a0.inst.setSharding(view('storage'))).toBe(true);
    expect(await b0.inst.setSharding(view('storage'))).toBe(true);
    await a0.inst.bootstrap({ role: 'master', synchroQuorum: 1, timeoutMs: 60_000 });
    await b0.inst.bootstrap({ role: 'master', synchroQuorum: 1, timeoutMs: 60_000 });
    const master = { uuid: a0.inst.identity.instanceUuid, address: a0.t.address, pod: a0.t.name };
    await a1.inst.setSharding(view('storage'));
    await a1.inst.bootstrap({ role: 'replica', master, peers: [a0.t.address, a1.t.address], synchroQuorum: 2, timeoutMs: 60_000 });
    await a0.inst.reconfigure({ peers: [a0.t.address, a1.t.address], synchroQuorum: 2 });
    // The router is configured first and gets its topology afterwards: a reload.
    await r0.inst.bootstrap({ role: 'master', synchroQuorum: 1, timeoutMs: 60_000 });
    expect(await r0.lua('return _G.vshard == nil or _G.vshard.router.internal.static_router == nil')).toBe(true);
    await r0.inst.setSharding(view('router'));

    for (const n of [a0, a1, b0, r0]) expect(await n.lua("return require('config'):info().status")).toBe('ready');
    for (const n of [a0, a1, b0]) expect(await n.lua('return type(vshard.storage.buckets_count)')).toBe('function');
    // The router knows both storages and their masters, and no bucket yet.
    const info = (await eventually(async () => {
      const i = (await r0.lua('return vshard.router.info()')) as { replicasets: Record<string, { master: { name?: string; status: string } }>; bucket: { unknown: number } };
      return Object.values(i.replicasets).every((rs) => rs.master.status === 'available') ? i : undefined;
    }, 30_000)) as { replicasets: Record<string, { master: { name?: string } }>; bucket: { unknown: number } };
    expect(Object.values(info.replicasets).map((rs) => rs.master.name).sort()).toEqual(['storage-a-0', 'storage-b-0']);
    expect(info.bucket.unknown).toBe(BUCKETS);
  });

  it('after one bootstrap every bucket is active on exactly one storage, and the router routes', async () => {
    // Through the agent's hands (the coordinator's bootstrapBuckets command): once, then "found".
    expect(await r0.inst.bootstrapBuckets({ timeoutMs: 20_000 })).toEqual({ found: false });
    expect(await r0.inst.bootstrapBuckets({ timeoutMs: 20_000 })).toEqual({ found: true });
    // What the agents report (heartbeats → /status): each storage's buckets, the router's view.
    const [sa, sb, sr] = await Promise.all([a0, b0, r0].map((n) => n.inst.state()));
    const counts = [sa!.vshard?.storage?.active ?? 0, sb!.vshard?.storage?.active ?? 0];
    expect(counts.every((c) => c > 0)).toBe(true);
    expect(counts[0]! + counts[1]!).toBe(BUCKETS);
    expect(sa!.vshard?.storage).toMatchObject({ sending: 0, receiving: 0, garbage: 0, total: counts[0] });
    expect(sa!.shardingRoles).toEqual(['storage']);
    expect(sr!.shardingRoles).toEqual([]);
    expect(sr!.vshard?.router).toMatchObject({ masters: { 'storage-a': 'storage-a-0', 'storage-b': 'storage-b-0' }, unreachable: 0 });
    await eventually(async () => ((await r0.inst.state()).vshard?.router?.unknown === 0 ? true : undefined), 20_000);
    // The coordinator's findMasters (after a storage promotion) runs vshard's master search; the router's view holds.
    await r0.inst.findMasters({ timeoutMs: 5_000 });
    expect((await r0.inst.state()).vshard?.router?.masters).toEqual({ 'storage-a': 'storage-a-0', 'storage-b': 'storage-b-0' });
    // A storage has no router: the command says so rather than pretending.
    await expect(a0.inst.findMasters({ timeoutMs: 5_000 })).rejects.toThrow();

    for (let i = 0; i < 20; i++) expect(await r0.lua('return kv_put(...)', `key-${i}`, i)).toBe(true);
    for (let i = 0; i < 20; i++) expect(await r0.lua('return kv_get(...)', `key-${i}`)).toBe(i);
    expect(await r0.lua('return kv_get(...) == nil', 'missing')).toBe(true);
    // Both storages hold some of the keys, replicated synchronously within storage-a.
    const rows = await Promise.all([a0, a1, b0].map(async (n) => (await n.lua('return box.space.kv:count()')) as number));
    expect(rows[0]! + rows[2]!).toBe(20);
    expect(rows[1]).toBe(rows[0]);
  });
});
