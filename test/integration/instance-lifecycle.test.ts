// LocalInstance against real Tarantool 2.6: bootstrap with deterministic identities, a replica
// joining, runtime reconfiguration, fencing, a restart that keeps identity, topology hooks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceUuid, replicasetUuid } from '../../common/identity.js';
import { LuaError } from '../../agent/console/errors.js';
import { readinessOf } from '../../agent/instance/readiness.js';
import { covers } from '../../agent/tarantool/vclock.js';
import { eventually, TarantoolFleet, TEST_CLUSTER, TEST_CREDENTIALS, TEST_NAMESPACE, TEST_REPLICASET, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const HOOKS = `
require('shoal').on_topology(function(t) _G.seen_topology = t end)
require('shoal').on_topology(function(t) error('this hook is broken') end)
`;

describe('local instance lifecycle', () => {
  const fleet = new TarantoolFleet();
  let m: Node;
  let r: Node;

  beforeAll(async () => {
    [m, r] = await Promise.all([fleet.node('storage-0', { afterCfg: HOOKS }), fleet.node('storage-1')]);
  });
  afterAll(() => fleet.cleanup());

  it('reports an unconfigured instance with an empty data directory before box.cfg', async () => {
    const { state, offline } = await m.inst.inspect();
    expect(state).toMatchObject({ phase: 'waiting', configured: false, role: 'unconfigured', vclock: {} });
    expect(state.pid).toBe(m.t.pid);
    expect(offline).toMatchObject({ empty: true, vclock: {} });
    expect(offline?.dirs.memtx).toBe(m.t.workDir);
    expect(readinessOf(state).ready).toBe(false);
  });

  it('bootstraps a master with the deterministic UUIDs and the replication user', async () => {
    const s = await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    expect(s).toMatchObject({
      configured: true,
      role: 'master',
      ro: false,
      status: 'running',
      id: 1,
      uuid: instanceUuid(TEST_NAMESPACE, TEST_CLUSTER, 'storage-0'),
      replicasetUuid: replicasetUuid(TEST_NAMESPACE, TEST_CLUSTER, TEST_REPLICASET),
      listen: m.t.address,
      lag: 0,
    });
    expect(await m.lua("return box.cfg.feedback_enabled")).toBe(false);
    // The application's options are kept where the agent does not own them.
    expect(await m.lua('return box.cfg.memtx_memory')).toBe(64 * 1024 * 1024);
    expect(await m.lua("return box.schema.user.exists(...)", TEST_CREDENTIALS.user)).toBe(true);
    expect(await m.lua("return box.space._priv:select{box.space._user.index.name:get{...}.id}[1] ~= nil", TEST_CREDENTIALS.user)).toBe(true);
    // Idempotent: ensuring it again writes nothing.
    const before = (await m.inst.state()).vclock;
    await m.inst.ensureReplicationUser();
    expect((await m.inst.state()).vclock).toEqual(before);
    // A second bootstrap is refused with a reason.
    await expect(m.inst.bootstrap({ role: 'master' })).rejects.toThrow(/configured.*reconfigure/);
  });

  it('joins a replica that receives the data', async () => {
    await m.lua("local s = box.schema.space.create('t', {if_not_exists = true}) s:create_index('pk', {if_not_exists = true}) for i = 1, 10 do s:replace{i, 'row ' .. i} end");
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    const s = await r.inst.bootstrap({ role: 'replica', master, peers: [m.t.address, r.t.address], timeoutMs: 60_000 });
    expect(s).toMatchObject({ role: 'replica', ro: true, id: 2, uuid: instanceUuid(TEST_NAMESPACE, TEST_CLUSTER, 'storage-1') });
    expect(s.replicasetUuid).toBe(replicasetUuid(TEST_NAMESPACE, TEST_CLUSTER, TEST_REPLICASET));
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
    expect(await r.lua("return box.space.t:get{7}[2]")).toBe('row 7');
    await m.lua("box.space.t:replace{11, 'later'}");
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
    expect(await r.lua("return box.space.t:get{11}[2]")).toBe('later');
    const rs = await eventually(async () => {
      const st = await r.inst.state();
      return readinessOf(st).ready ? st : undefined;
    });
    expect(rs.replication.find((p) => p.uuid === master.uuid)?.upstream?.status).toBe('follow');
    expect(rs.lag).toBeGreaterThanOrEqual(0);
  });

  it('reconfigures at run time without ever making the master orphan', async () => {
    const started = Date.now();
    const s = await m.inst.reconfigure({ peers: [m.t.address, r.t.address, '127.0.0.1:1'], synchroQuorum: 2, synchroTimeoutS: 5 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(s).toMatchObject({ ro: false, status: 'running', synchroQuorum: 2, role: 'master' });
    expect(await m.lua('return box.cfg.replication_connect_quorum')).toBe(0);
    expect(await m.lua('return #box.cfg.replication')).toBe(3);
    // The master now also follows the replica, and keeps running with one peer unreachable.
    await eventually(async () => {
      const st = await m.inst.state();
      return st.replication.find((p) => p.uuid === r.inst.identity.instanceUuid)?.upstream?.status === 'follow' ? st : undefined;
    });
    expect((await m.inst.state()).status).toBe('running');
    await m.inst.reconfigure({ peers: [m.t.address, r.t.address], synchroQuorum: 1 });
  });

  it('fences: the instance refuses writes until unfenced', async () => {
    const fenced = await m.inst.fence();
    expect(fenced).toMatchObject({ role: 'fenced', ro: true });
    const err = await m.lua("box.space.t:replace{99, 'while fenced'}").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LuaError);
    expect((err as LuaError).code).toBe(7); // ER_READONLY
    expect(readinessOf(fenced)).toMatchObject({ ready: false, reason: expect.stringContaining('fenced') });
    const open = await m.inst.unfence();
    expect(open.role).toBe('master');
    await m.lua("box.space.t:replace{99, 'after unfence'}");
    expect(await m.lua('return box.space.t:get{99}[2]')).toBe('after unfence');
  });

  it('delivers the topology to every hook, isolating a failing one', async () => {
    const topology = { replicasets: [{ name: 'storage', master: 'storage-0', instances: [{ pod: 'storage-0', uuid: m.inst.identity.instanceUuid }] }] };
    const d = await m.inst.topology(topology);
    expect(d.hooks).toBe(2);
    expect(d.errors).toHaveLength(1);
    expect(d.errors[0]).toContain('this hook is broken');
    expect(await m.lua('return _G.seen_topology')).toEqual(topology);
  });

  it('keeps its identity and data across a restart', async () => {
    const before = await r.inst.state();
    await r.t.kill('SIGKILL');
    await r.t.spawn();
    await r.inst.waitForConsole({ timeoutMs: 60_000 });
    const { state, offline } = await r.inst.inspect();
    expect(state.phase).toBe('waiting');
    expect(offline?.empty).toBe(false);
    expect(covers(offline?.vclock ?? {}, before.vclock)).toBe(true);
    expect(covers(before.vclock, offline?.vclock ?? {})).toBe(true);
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    const after = await r.inst.bootstrap({ role: 'replica', master, peers: [m.t.address, r.t.address], timeoutMs: 60_000 });
    expect(after).toMatchObject({ id: before.id, uuid: before.uuid, replicasetUuid: before.replicasetUuid, role: 'replica' });
    // box.cfg returns once the lag is under replication_sync_lag, not necessarily fully caught up.
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
    expect(await r.lua('return box.space.t:get{99}[2]')).toBe('after unfence');
  });
});
