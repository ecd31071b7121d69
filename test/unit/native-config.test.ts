// The agent's half of the 3.x native style: what a user's config may hold, and the whole config one
// instance gets (the user's options with the cluster part over them).
import { describe, expect, it } from 'vitest';
import { parseUserConfig, renderNativeConfig, type NativeView } from '../../agent/instance/native-config.js';

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
