// Promotion after the master died with a synchronous transaction pending, on both Tarantool lanes:
// the replica holds the unconfirmed row and refuses writes until promote() — on 3.x because the dead
// master still owns the synchronous queue (read-only, ro_reason 'synchro'; box.ctl.promote claims it
// in a new term), on 2.6 because of the old master's uncommitted transactions
// (box.ctl.clear_synchro_queue clears them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LuaError } from '../../agent/console/errors.js';
import { TARANTOOL_LANES } from '../../demo/tarantool-binaries.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

describe.each(TARANTOOL_LANES)('promote after the master dies with a pending sync transaction (Tarantool %s)', (lane) => {
  const fleet = new TarantoolFleet();
  let m: Node;
  let r: Node;

  beforeAll(async () => {
    [m, r] = await Promise.all([fleet.node('storage-0', { lane }), fleet.node('storage-1', { lane })]);
    await m.inst.bootstrap({ role: 'master', synchroQuorum: 2, synchroTimeoutS: 1, timeoutMs: 60_000 });
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    await r.inst.bootstrap({ role: 'replica', master, peers: [m.t.address], synchroQuorum: 2, synchroTimeoutS: 1, timeoutMs: 60_000 });
    await m.inst.reconfigure({ peers: [m.t.address, r.t.address] });
  });
  afterAll(() => fleet.cleanup());

  it('acknowledges sync writes with quorum 2 while both are up', async () => {
    await m.lua("local s = box.schema.space.create('sync', {is_sync = true}) s:create_index('pk') s:insert{1, 'acked'}");
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
    expect(await r.lua('return box.space.sync:get{1}[2]')).toBe('acked');
  });

  it('refuses writes on the replica until promote clears the queue, then accepts them', async () => {
    // Make the quorum unreachable so the next insert stays pending long enough to kill the
    // master deterministically (with quorum 2 the live replica would confirm it in a millisecond).
    await m.inst.reconfigure({ synchroQuorum: 3, synchroTimeoutS: 60 });
    await m.lua("require('fiber').create(function() pcall(box.space.sync.insert, box.space.sync, {2, 'pending'}) end)");
    // The pending row is written to the master's WAL (vclock moves) and reaches the replica.
    const pendingVclock = await eventually(async () => {
      const s = await m.inst.state();
      return (s.vclock['1'] ?? 0) > 0 && (await m.lua('return box.space.sync:get{2} ~= nil')) === true ? s.vclock : undefined;
    });
    await r.inst.waitForVclock(pendingVclock, 20_000);
    await m.t.kill('SIGKILL');

    // Writable but not promoted: the old master's queue blocks every write.
    const before = await r.inst.reconfigure({ readOnly: false, synchroQuorum: 1 });
    const refused = await r.lua("box.space.sync:insert{3, 'too early'}").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LuaError);
    if (lane === '3') {
      expect((refused as LuaError).luaMessage).toMatch(/read-only/);
      expect(before).toMatchObject({ ro: true, roReason: 'synchro', role: 'replica' });
      expect(before.synchro?.owner).toBe(1); // the dead master, the bootstrap leader
    } else {
      expect((refused as LuaError).luaMessage).toMatch(/uncommitted sync transactions/);
    }

    const started = Date.now();
    const s = await r.inst.promote({ synchroQuorum: 1, timeoutMs: 60_000 });
    expect(s).toMatchObject({ role: 'master', ro: false, status: 'running' });
    expect(s.promotion?.state).toBe('done');
    expect(Date.now() - started).toBeLessThan(30_000);
    if (lane === '3') {
      // The queue is its own now, in a newer term: rows of the deposed owner would be refused.
      expect(s.synchro?.owner).toBe(s.id);
      expect(s.synchro?.term ?? 0).toBeGreaterThan(before.synchro?.term ?? 0);
    }

    await r.lua("box.space.sync:insert{3, 'after promote'}");
    expect(await r.lua('return box.space.sync:get{3}[2]')).toBe('after promote');
    expect(await r.lua('return box.space.sync:get{1}[2]')).toBe('acked');
  });
});

describe('a restarted owner of the synchronous queue (Tarantool 3)', () => {
  const fleet = new TarantoolFleet();
  afterAll(() => fleet.cleanup());

  it('stays read-only (ro_reason synchro) after a restart until promote() claims the queue in a new term', async () => {
    const m = await fleet.node('storage-0', { lane: '3' });
    const first = await m.inst.bootstrap({ role: 'master', synchroQuorum: 1, timeoutMs: 60_000 });
    await m.lua("box.schema.space.create('sync', {is_sync = true}):create_index('pk') box.space.sync:insert{1}");
    await m.t.kill('SIGKILL');
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });
    // What the coordinator does with a restarted master nobody is ahead of: start read-only, then promote.
    const back = await m.inst.bootstrap({ role: 'master', readOnly: true, synchroQuorum: 1, timeoutMs: 60_000 });
    expect(back.synchro?.owner).toBe(back.id); // ownership recovered from the WAL…
    const writable = await m.inst.reconfigure({ readOnly: false });
    expect(writable).toMatchObject({ ro: true, roReason: 'synchro' }); // …but not the right to write
    const s = await m.inst.promote({ synchroQuorum: 1, timeoutMs: 30_000 });
    expect(s).toMatchObject({ ro: false, role: 'master' });
    expect(s.synchro?.term ?? 0).toBeGreaterThan(first.synchro?.term ?? 0);
    await m.lua('box.space.sync:insert{2}');
    expect(await m.lua('return box.space.sync:count()')).toBe(2);
  });
});
