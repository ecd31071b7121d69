// The agent's half of the 3.x native style: what a user's config may hold, and the whole config one
// instance gets (the user's options with the cluster part over them).
import { describe, expect, it } from 'vitest';
import { parseUserConfig, renderNativeConfig, type NativeView, type ShardStorage } from '../../agent/instance/native-config.js';

const VIEW: NativeView = {
  group: 'demo',
  replicaset: 'storage',
  instance: 'storage-1',
  instanceUuid: '11111111-1111-5111-8111-111111111111',
  replicasetUuid: '22222222-2222-5222-8222-222222222222',
  listen: '0.0.0.0:3301',
  members: { 'storage-0': '10.1.0.2:3301' },
  leader: 'storage-0',
  peers: ['10.1.0.2:3301', '10.1.0.3:3301'],
  credentials: { user: 'shoal', password: 'pw' },
  synchroQuorum: 2,
};

describe('parseUserConfig', () => {
  it.each([
    ['credentials:\n  users:\n    app: {password: x, roles: [super]}\n', []],
    ['', []],
    ['replication:\n  failover: manual\n  timeout: 0.5\n', []],
    ['groups: {}\n', [/remove "groups"/]],
    ['replication:\n  failover: election\n', [/remove replication.failover/]],
    ['replication:\n  peers: [a]\n', [/replication.peers/]],
    ['database:\n  mode: rw\n', [/database.mode/]],
    ['- a\n- b\n', [/YAML mapping/]],
    ['a: [1\n', [/not valid YAML/]],
  ] as const)('%j → %j', (text, expected) => {
    const { problems } = parseUserConfig(text);
    expect(problems).toHaveLength(expected.length);
    expected.forEach((re, i) => expect(problems[i]).toMatch(re));
  });
});

describe('renderNativeConfig', () => {
  it('keeps the user\'s options and adds the topology, the failover mode, the peers and the replication user', () => {
    const user = { credentials: { users: { app: { password: 'a', roles: ['super'] } } }, replication: { timeout: 0.5 }, memtx: { memory: 1 } };
    const c = renderNativeConfig(user, VIEW);
    expect(c).toEqual({
      credentials: { users: { app: { password: 'a', roles: ['super'] }, shoal: { password: 'pw', roles: ['replication'] } } },
      memtx: { memory: 1 },
      replication: { timeout: 0.5, failover: 'manual', peers: ['shoal:pw@10.1.0.2:3301', 'shoal:pw@10.1.0.3:3301'], synchro_quorum: 2 },
      groups: {
        demo: {
          replicasets: {
            storage: {
              database: { replicaset_uuid: VIEW.replicasetUuid },
              leader: 'storage-0',
              instances: {
                'storage-0': { iproto: { listen: [{ uri: '10.1.0.2:3301' }] } },
                'storage-1': { database: { instance_uuid: VIEW.instanceUuid }, iproto: { listen: [{ uri: '0.0.0.0:3301' }] } },
              },
            },
          },
        },
      },
    });
    expect(user.replication).toEqual({ timeout: 0.5 }); // the user's object is not changed
  });

  it('names no leader when nobody may write (a fenced master, a replica set without a master)', () => {
    const c = renderNativeConfig({}, { ...VIEW, leader: null });
    const rs = (c['groups'] as Record<string, { replicasets: Record<string, Record<string, unknown>> }>)['demo']!.replicasets['storage']!;
    expect(rs['leader']).toBeUndefined();
  });
});

describe('renderNativeConfig: a sharded cluster (SPEC §4b)', () => {
  const storages: ShardStorage[] = [
    {
      name: 'storage',
      uuid: VIEW.replicasetUuid,
      instances: {
        'storage-0': { uuid: 'aaaaaaaa-0000-5000-8000-000000000000', uri: '10.1.0.2:3301' },
        'storage-1': { uuid: VIEW.instanceUuid, uri: '10.1.0.3:3301' },
        'storage-2': { uuid: 'aaaaaaaa-0000-5000-8000-000000000002', uri: '10.1.0.4:3301' },
      },
    },
    { name: 'storage-b', uuid: '33333333-3333-5333-8333-333333333333', instances: { 'storage-b-0': { uuid: 'bbbbbbbb-0000-5000-8000-000000000000', uri: '10.1.1.2:3301' } } },
  ];
  type Rs = { sharding?: { roles: string[] }; leader?: string; database: { replicaset_uuid: string }; instances: Record<string, { database?: { instance_uuid: string }; iproto: { listen: Array<{ uri: string }> } }> };
  const groupOf = (c: Record<string, unknown>) => (c['groups'] as Record<string, { replicasets: Record<string, Rs> }>)['demo']!.replicasets;

  it('lists every storage replica set with all its instances, and nothing of the masters elsewhere', () => {
    const c = renderNativeConfig({ sharding: { bucket_count: 300 } }, { ...VIEW, sharding: { role: 'storage', storages } });
    const rs = groupOf(c);
    expect(Object.keys(rs).sort()).toEqual(['storage', 'storage-b']);
    expect(rs['storage']).toMatchObject({ leader: 'storage-0', sharding: { roles: ['storage'] } });
    expect(Object.keys(rs['storage']!.instances).sort()).toEqual(['storage-0', 'storage-1', 'storage-2']);
    // This instance keeps its own listen address; the others are listed at theirs.
    expect(rs['storage']!.instances['storage-1']!.iproto.listen).toEqual([{ uri: '0.0.0.0:3301' }]);
    expect(rs['storage']!.instances['storage-2']).toEqual({ database: { instance_uuid: 'aaaaaaaa-0000-5000-8000-000000000002' }, iproto: { listen: [{ uri: '10.1.0.4:3301' }] } });
    expect(rs['storage-b']).toEqual({
      database: { replicaset_uuid: '33333333-3333-5333-8333-333333333333' },
      sharding: { roles: ['storage'] },
      instances: { 'storage-b-0': { database: { instance_uuid: 'bbbbbbbb-0000-5000-8000-000000000000' }, iproto: { listen: [{ uri: '10.1.1.2:3301' }] } } },
    });
    expect(rs['storage-b']).not.toHaveProperty('leader');
    // vshard connects as Shoal's replication user, which gets the sharding role.
    expect(c['iproto']).toEqual({ advertise: { sharding: { login: 'shoal' } } });
    expect((c['credentials'] as { users: Record<string, unknown> }).users['shoal']).toEqual({ password: 'pw', roles: ['replication', 'sharding'] });
    // Replication stays within the replica set; the user's sharding options stay.
    expect((c['replication'] as { peers: string[] }).peers).toEqual(['shoal:pw@10.1.0.2:3301', 'shoal:pw@10.1.0.3:3301']);
    expect(c['sharding']).toEqual({ bucket_count: 300 });
  });

  it("a router lists the storages, and its role only when the user's config names none", () => {
    const router = { ...VIEW, replicaset: 'router', instance: 'router-0', members: {}, leader: 'router-0', peers: [] };
    const byAnnotation = groupOf(renderNativeConfig({}, { ...router, sharding: { role: 'router', storages } }));
    expect(Object.keys(byAnnotation).sort()).toEqual(['router', 'storage', 'storage-b']);
    expect(byAnnotation['router']).toMatchObject({ sharding: { roles: ['router'] } });
    expect(byAnnotation['storage']).toMatchObject({ sharding: { roles: ['storage'] } });
    expect(Object.keys(byAnnotation['router']!.instances)).toEqual(['router-0']);
    const byConfig = groupOf(renderNativeConfig({ sharding: { roles: ['router'] } }, { ...router, sharding: { role: 'router', storages } }));
    expect(byConfig['router']).not.toHaveProperty('sharding');
  });

  it('keeps the user\'s iproto options', () => {
    const c = renderNativeConfig({ iproto: { readahead: 65536, advertise: { client: 'x:1' } } }, { ...VIEW, sharding: { role: 'storage', storages } });
    expect(c['iproto']).toEqual({ readahead: 65536, advertise: { client: 'x:1', sharding: { login: 'shoal' } } });
  });

  it('is unchanged without a sharding view', () => {
    const c = renderNativeConfig({}, VIEW);
    expect(c).not.toHaveProperty('iproto');
    expect(Object.keys(groupOf(c))).toEqual(['storage']);
  });
});
