// The 3.x native style (SPEC §4a) with real Tarantool 3.8 processes: the user's YAML config has no
// topology, the agent adds it, and Tarantool's own config module starts and reloads the instance.
// A leader change is config → reload → box.ctl.promote() (TARANTOOL3.md); a fenced master stays
// read-only through later reloads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { LuaError } from '../../agent/console/errors.js';
import { TarantoolFleet, TEST_CLUSTER, TEST_REPLICASET, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const APP = `
-- The application: what it would be without Shoal. Runs after box.cfg, again on every reload.
if not box.info.ro then
  box.schema.space.create('kv', {if_not_exists = true, is_sync = true})
  box.space.kv:create_index('pk', {if_not_exists = true, parts = {1, 'string'}})
end
`;
const USER_CONFIG = `credentials:
  users:
    app:
      password: app-secret
      roles: [super]
`;

describe('the 3.x native style: a Tarantool 3 config without topology', () => {
  const fleet = new TarantoolFleet();
  let n0: Node;
  let n1: Node;
  let n2: Node;
  const ref = (n: Node) => ({ uuid: n.inst.identity.instanceUuid, address: n.t.address, pod: n.t.name });
  const all = () => [n0.t.address, n1.t.address, n2.t.address];

  beforeAll(async () => {
    const native = { config: USER_CONFIG, app: APP };
    [n0, n1, n2] = await Promise.all([
      fleet.node('storage-0', { lane: '3', native }),
      fleet.node('storage-1', { lane: '3', native }),
      fleet.node('storage-2', { lane: '3', native }),
    ]);
  });
  afterAll(() => fleet.cleanup());

  it('starts a master and two replicas named after their pods, through the config module', async () => {
    const before = await n0.inst.state();
    expect(before).toMatchObject({ phase: 'waiting', style: 'native' });
    await n0.inst.bootstrap({ role: 'master', synchroQuorum: 2, timeoutMs: 60_000 });
    await Promise.all(
      [n1, n2].map((n) => n.inst.bootstrap({ role: 'replica', master: ref(n0), peers: all(), synchroQuorum: 2, timeoutMs: 60_000 })),
    );
    await n0.inst.reconfigure({ peers: all() });

    for (const n of [n0, n1, n2]) {
      const s = await n.inst.state();
      expect(s).toMatchObject({ phase: 'configured', style: 'native', name: n.t.name, uuid: n.inst.identity.instanceUuid });
      expect(s.version).toMatch(/^3\./);
      expect(await n.lua("return require('config'):info().status")).toBe('ready');
    }
    const master = await n0.inst.state();
    expect(master).toMatchObject({ ro: false, role: 'master' });
    expect(master.synchro?.owner).toBe(master.id); // the first start claimed the queue
    expect(await n1.inst.state()).toMatchObject({ ro: true, role: 'replica' });

    // What Tarantool read: the user's options and the cluster part Shoal added.
    const written = parse(await readFile(join(n0.t.runDir, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({
      credentials: { users: { app: { roles: ['super'] } } },
      replication: { failover: 'manual' },
      groups: { [TEST_CLUSTER]: { replicasets: { [TEST_REPLICASET]: { leader: 'storage-0' } } } },
    });
  });

  it('acknowledges synchronous writes on the leader and replicates them', async () => {
    await n0.lua("box.space.kv:insert{'a', 1}");
    const vclock = (await n0.inst.state()).vclock;
    await Promise.all([n1, n2].map((n) => n.inst.waitForVclock(vclock, 20_000)));
    expect(await n2.lua("return box.space.kv:get{'a'}[2]")).toBe(1);
    const refused = await n1.lua("box.space.kv:insert{'b', 2}").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LuaError);
  });

  it('keeps a fenced master read-only through a reload for another reason, until it is unfenced', async () => {
    const fenced = await n0.inst.fence();
    expect(fenced).toMatchObject({ ro: true, roReason: 'config', role: 'fenced' });
    const after = await n0.inst.reconfigure({ synchroQuorum: 2 }); // a reload that names it leader again
    expect(after.ro).toBe(true);
    const unfenced = await n0.inst.unfence();
    expect(unfenced).toMatchObject({ ro: false, role: 'master' });
    await n0.lua("box.space.kv:insert{'c', 3}");
  });

  it('moves the leader: fence the old one, promote the new one through its config, follow it', async () => {
    const old = await n0.inst.fence();
    await n1.inst.waitForVclock(old.vclock, 20_000);
    const promoted = await n1.inst.promote({ synchroQuorum: 2, timeoutMs: 60_000 });
    expect(promoted).toMatchObject({ ro: false, role: 'master', name: 'storage-1' });
    expect(promoted.synchro?.owner).toBe(promoted.id);
    expect(promoted.synchro?.term ?? 0).toBeGreaterThan(old.synchro?.term ?? 0);

    await Promise.all(
      [n0, n2].map((n) => n.inst.reconfigure({ readOnly: true, master: ref(n1), peers: all(), synchroQuorum: 2 })),
    );
    await n1.lua("box.space.kv:insert{'d', 4}");
    const vclock = (await n1.inst.state()).vclock;
    await Promise.all([n0, n2].map((n) => n.inst.waitForVclock(vclock, 20_000)));
    expect(await n0.lua("return box.space.kv:get{'d'}[2]")).toBe(4);
    const s0 = await n0.inst.state();
    expect(s0.synchro?.owner).toBe(promoted.id);
  });
});

describe('the 3.x native style refuses what Shoal must own', () => {
  const fleet = new TarantoolFleet();
  afterAll(() => fleet.cleanup());

  it('says which option to remove when the user config has its own topology or failover', async () => {
    const n = await fleet.node('storage-0', {
      lane: '3',
      native: { config: 'replication:\n  failover: election\ngroups:\n  g:\n    replicasets: {}\n' },
    });
    const err = await n.inst.bootstrap({ role: 'master', timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/remove "groups"/);
    expect(String((err as Error).message)).toMatch(/replication\.failover/);
    expect(await n.inst.state()).toMatchObject({ phase: 'waiting' }); // nothing was started
  });

  it('names a data directory it cannot create before the config module dies on it', async () => {
    const n = await fleet.node('storage-1', { lane: '3', native: { config: 'vinyl:\n  dir: /proc/shoal-cannot-create\n' } });
    const err = await n.inst.bootstrap({ role: 'master', timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(/cannot create the vinyl directory \/proc\/shoal-cannot-create/);
    expect(await n.inst.state()).toMatchObject({ phase: 'waiting' });
  });
});
