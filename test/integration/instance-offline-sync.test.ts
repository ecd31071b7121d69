// The offline reader (shoal.lua offline_vclock) must know a space is synchronous however it became
// so: created with is_sync, or turned synchronous later — an UPDATE of _space on 2.x (no
// space:alter there) or 3.x's space:alter (a REPLACE). Missing the later cases hid a master's own
// unconfirmed transactions from the recovery-hazard check. On a real Tarantool of each lane.
import { afterEach, describe, expect, it } from 'vitest';
import { TARANTOOL_LANES } from '../../demo/tarantool-binaries.js';
import { TarantoolFleet } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const MAKE_SYNC = {
  'created synchronous': "box.schema.space.create('kv', {is_sync = true}):create_index('pk')",
  'turned synchronous by an update of _space': "local s = box.schema.space.create('kv') s:create_index('pk') s:insert{0} box.space._space:update({s.id}, {{'=', 6, {is_sync = true}}})",
  'turned synchronous by name (flags)': "local s = box.schema.space.create('kv') s:create_index('pk') s:insert{0} box.space._space:update({s.id}, {{'=', 'flags', {is_sync = true}}})",
} as const;

describe.each(TARANTOOL_LANES)('offline reading of synchronous spaces (Tarantool %s)', (lane) => {
  const fleet = new TarantoolFleet();
  afterEach(() => fleet.cleanup());

  it.each(Object.entries(MAKE_SYNC))('a master killed with a pending write to a space %s reports it unconfirmed', async (_how, lua) => {
    const m = await fleet.node('storage-0', { lane });
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    // Quorum 2 with no replica: the synchronous insert waits, and the master is killed meanwhile.
    await m.inst.reconfigure({ peers: [m.t.address], synchroQuorum: 2, synchroTimeoutS: 30 });
    await m.lua(lua);
    const before = (await m.inst.state()).vclock;
    await m.lua("require('fiber').create(function() pcall(box.space.kv.insert, box.space.kv, {1}) end)");
    await new Promise((res) => setTimeout(res, 200));
    await m.t.kill('SIGKILL');
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });

    const { offline } = await m.inst.inspect();
    const own = offline?.ownId;
    expect(own).toBe(1);
    expect(offline?.unconfirmed[String(own)]).toBe((before[String(own)] ?? 0) + 1);
  });

  it('a space turned back to asynchronous does not count', async () => {
    const m = await fleet.node('storage-0', { lane });
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    await m.lua("local s = box.schema.space.create('kv', {is_sync = true}) s:create_index('pk') box.space._space:update({s.id}, {{'=', 6, {is_sync = false}}}) s:insert{1}");
    await m.t.kill('SIGKILL');
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });
    const { offline } = await m.inst.inspect();
    expect(offline?.ownId).toBe(1);
    expect(offline?.unconfirmed).toEqual({});
  });
});
