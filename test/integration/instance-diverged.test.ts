// A returning old master that has writes the new master never received (TARANTOOL.md "No
// split-brain detection"): detected from its vclock, rebootstrapped as a replica with the same
// instance_uuid, its old data kept on disk. Case 1: a duplicate key, the old master restarted
// (offline vclock, before box.cfg). Case 2: a same-key replace, the old master still running.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hasDiverged, aheadComponents } from '../../agent/tarantool/vclock.js';
import { readinessOf } from '../../agent/instance/readiness.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

// Separate snapshot and WAL directories, relative to work_dir, as an application may configure them.
const APP = { appOptions: "memtx_dir = 'snap', wal_dir = 'wal'", subdirs: ['snap', 'wal'] };

async function pair(fleet: TarantoolFleet): Promise<{ m: Node; r: Node }> {
  const [m, r] = await Promise.all([fleet.node('storage-0', APP), fleet.node('storage-1', APP)]);
  await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
  await m.lua("local s = box.schema.space.create('t') s:create_index('pk') for i = 1, 5 do s:insert{i, 'common'} end");
  await r.inst.bootstrap({ role: 'replica', master: { uuid: m.inst.identity.instanceUuid, address: m.t.address }, peers: [m.t.address], timeoutMs: 60_000 });
  await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
  // Partition: the replica stops following, so the master's next writes never reach it.
  await r.inst.reconfigure({ peers: [] });
  return { m, r };
}

/** The files moved aside: every shoal-diverged-* directory under `dir` with its entries. */
async function asideFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    if (!name.startsWith('shoal-diverged-')) continue;
    for (const f of await readdir(join(dir, name))) out.push(`${name}/${f}`);
  }
  return out;
}

describe('diverged old master', () => {
  const fleet = new TarantoolFleet();
  afterEach(() => fleet.cleanup());

  it('duplicate key: detected offline after a restart, rebootstrapped before box.cfg, old data kept', async () => {
    const { m, r } = await pair(fleet);
    const oldId = (await m.inst.state()).id ?? 0;
    await m.lua("box.space.t:insert{100, 'old master only'}");
    await m.t.kill('SIGKILL');

    const promoted = await r.inst.promote({ timeoutMs: 60_000 });
    await r.lua("box.space.t:insert{100, 'new master'}");
    const newVclock = (await r.inst.state()).vclock;
    expect(promoted.role).toBe('master');

    // The old master comes back: unconfigured, its data files tell what it has.
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });
    const { state, offline } = await m.inst.inspect();
    expect(state.phase).toBe('waiting');
    expect(offline?.dirs.memtx).toBe(join(m.t.workDir, 'snap'));
    expect(offline?.dirs.wal).toBe(join(m.t.workDir, 'wal'));
    expect(hasDiverged(offline?.vclock ?? {}, newVclock, oldId)).toBe(true);
    expect(aheadComponents(offline?.vclock ?? {}, newVclock)).toEqual([{ id: oldId, lsn: offline?.vclock[String(oldId)], other: newVclock[String(oldId)] ?? 0 }]);

    const master = { uuid: r.inst.identity.instanceUuid, address: r.t.address };
    const result = await m.inst.rebootstrap({ role: 'replica', master, peers: [r.t.address], reason: 'test: duplicate key', timeoutMs: 60_000 });
    expect(result.restartRequired).toBe(false);
    expect(result.moved.map((d) => d.from).sort()).toEqual([join(m.t.workDir, 'snap'), join(m.t.workDir, 'wal')]);
    expect(result.state).toMatchObject({ role: 'replica', uuid: m.inst.identity.instanceUuid, id: oldId });

    await m.inst.waitForVclock((await r.inst.state()).vclock, 20_000);
    expect(await m.lua('return box.space.t:get{100}[2]')).toBe('new master');
    await eventually(async () => (readinessOf(await m.inst.state()).ready ? true : undefined));
    // Replication in both directions stays healthy: nothing conflicting came back.
    await r.inst.reconfigure({ peers: [r.t.address, m.t.address] });
    const rs = await eventually(async () => {
      const s = await r.inst.state();
      return s.replication.find((p) => p.id === oldId)?.upstream?.status === 'follow' ? s : undefined;
    });
    expect(rs).toMatchObject({ status: 'running', ro: false });

    // Nothing was deleted: the old files, with the write the new master never had, are aside.
    const snapAside = await asideFiles(join(m.t.workDir, 'snap'));
    const walAside = await asideFiles(join(m.t.workDir, 'wal'));
    expect(snapAside.some((f) => f.endsWith('.snap'))).toBe(true);
    expect(walAside.some((f) => f.endsWith('.xlog'))).toBe(true);
    const note = snapAside.find((f) => f.endsWith('SHOAL-README.txt')) ?? '';
    expect(await readFile(join(m.t.workDir, 'snap', note), 'utf8')).toContain('test: duplicate key');
  });

  it('same-key replace: detected on the running old master, which moves its data aside and exits', async () => {
    const { m, r } = await pair(fleet);
    // The old master stays up but cut off; the coordinator fences it (self-fencing in real life).
    await m.lua("box.space.t:replace{1, 'old master version'}");
    await m.inst.fence();
    const old = await m.inst.state();

    await r.inst.promote({ timeoutMs: 60_000 });
    await r.lua("box.space.t:replace{1, 'new master version'}");
    const newVclock = (await r.inst.state()).vclock;
    // Same key on both: rejoining as is would leave silently different data (TARANTOOL.md).
    expect(hasDiverged(old.vclock, newVclock, old.id ?? 0)).toBe(true);

    const master = { uuid: r.inst.identity.instanceUuid, address: r.t.address };
    const result = await m.inst.rebootstrap({ role: 'replica', master, reason: 'test: same-key replace', timeoutMs: 60_000 });
    expect(result.restartRequired).toBe(true);
    expect(result.moved.length).toBe(2);
    expect(await m.t.exited).toBe(0);

    // The container restarts; the agent finds it empty and bootstraps it as a replica.
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });
    const { offline } = await m.inst.inspect();
    expect(offline?.empty).toBe(true);
    const s = await m.inst.bootstrap({ role: 'replica', master, peers: [r.t.address], timeoutMs: 60_000 });
    expect(s).toMatchObject({ uuid: old.uuid, id: old.id, role: 'replica' });
    await m.inst.waitForVclock((await r.inst.state()).vclock, 20_000);
    expect(await m.lua('return box.space.t:get{1}[2]')).toBe('new master version');
    // The write only the old master had is still there, readable in the moved xlog.
    const xlogs = (await asideFiles(join(m.t.workDir, 'wal'))).filter((f) => f.endsWith('.xlog'));
    expect(xlogs.length).toBeGreaterThan(0);
    const found = await m.lua(
      "local paths = ... for path in paths:gmatch('[^;]+') do for _, row in require('xlog').pairs(path) do " +
        "if row.BODY and row.BODY.tuple and row.BODY.tuple[2] == 'old master version' then return true end end end return false",
      xlogs.map((f) => join(m.t.workDir, 'wal', f)).join(';'),
    );
    expect(found).toBe(true);
  });
});
