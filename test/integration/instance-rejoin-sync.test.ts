// Issue 6 with real Tarantool 2.6: a replica that joins from scratch while synchronous writes flow
// can stop with ER_SYNC_MASTER_MISMATCH ("CONFIRM message arrived for an unknown master id N,
// expected 0": the CONFIRM of a transaction it received inside the initial snapshot, for a master its
// empty synchro queue does not know). Reproduced first (rejoins until it happens, bounded); then the
// coordinator's repair planner decides on what the agent really reports, and the agent's executor
// carries its commands out — a rebootstrap with the same identity at once (a replication restart
// gets the same CONFIRM again: tried by hand, 3 of 3 times) — until the replica follows, with every
// acknowledged write.
//
// What 2.6.0 guarantees, and so what this file asserts: the defect is a race, so reproducing it is
// bounded by time and the test reports itself skipped (with the reason) when 2.6.0 did not show it;
// and any join while synchronous writes flow can hit it again (2.6.0 has no join that is safe under
// sync load), so only the first remedy runs under load — the rest of the repair, with the writer
// paused, must bring the replica back with every acknowledged write.
import { readdir } from 'node:fs/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { toInstanceCommand } from '../../agent/coordinator/actions.js';
import { stamp } from '../../agent/decide/batch.js';
import { CommandExecutor } from '../../agent/member/commands.js';
import { toTarantoolReport } from '../../agent/member/probe.js';
import type { PlannedAction, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet, PersistedState } from '../../agent/decide/model.js';
import { emptyReplicaSet } from '../../agent/decide/members.js';
import { MAX_REPAIR_REBOOTSTRAPS, planReplicationRepair, stoppedUpstream } from '../../agent/decide/repair.js';
import { DEFAULT_TIMINGS as T } from '../../agent/decide/timings.js';
import { observedPod } from '../support/observe.js';
import { SYNC_LOAD } from '../support/sync-load.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

// Tarantool 2.6.0's own defects: this file reproduces them on Debian's 2.6.0 whatever the default lane.
const LANE_26 = { lane: '2.6' } as const;

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const MISMATCH = /CONFIRM message arrived for an unknown master id \d+, expected 0/;
const JOIN_ATTEMPTS = 40;
const REPRODUCE_FOR_MS = 150_000;

async function observe(node: Node, ordinal: number): Promise<ObservedInstance> {
  let state = null;
  try {
    state = await node.inst.state({ timeoutMs: 5_000 });
  } catch {
    // Not answering (exiting, restarting): reported as such.
  }
  return observedPod(node, ordinal, toTarantoolReport({ at: Date.now(), state, error: null, offline: null }));
}

describe('a replica rejoining under synchronous load (Tarantool 2.6)', () => {
  const fleet = new TarantoolFleet();
  afterEach(() => fleet.cleanup());

  it('stops with the sync mismatch; the repair (a rebootstrap with the same identity) makes it follow with every acknowledged write', async (ctx) => {
    // Quorum 2 with a second, healthy replica (as in a 3-member set): every sync write waits for a
    // replica's ack, so a joining replica's initial snapshot holds not yet confirmed tuples.
    const [m, r, w] = await Promise.all([fleet.node('storage-0', LANE_26), fleet.node('storage-1', LANE_26), fleet.node('storage-2', LANE_26)]);
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    const peers = [m.t.address, r.t.address, w.t.address].sort();
    await w.inst.bootstrap({ role: 'replica', master, peers: [m.t.address, w.t.address], synchroQuorum: 2, timeoutMs: 60_000 });
    await m.inst.reconfigure({ peers: [m.t.address, w.t.address], synchroQuorum: 2 });
    await m.lua(SYNC_LOAD);

    // The kubelet's part (a new container: the old process is gone, exiting or stuck half-way) and
    // then planConfigure's (an empty member joins; a half-joined data dir is moved aside first).
    const rejoin = async (): Promise<void> => {
      await r.t.kill('SIGKILL');
      await r.t.spawn();
      await r.inst.waitForConsole({ timeoutMs: 60_000 });
      await r.inst.rebootstrap({ role: 'replica', master, peers, reason: 'test: join again', timeoutMs: 60_000 }).catch(() => undefined);
    };
    const upstream = async () => (await r.inst.state()).replication.find((p) => p.uuid === master.uuid)?.upstream;

    // 1. Reproduce: join from scratch under load until the replica stops with the mismatch.
    let reproducedAt = 0;
    const outcomes: string[] = [];
    const reproduceUntil = Date.now() + REPRODUCE_FOR_MS;
    for (let attempt = 1; attempt <= JOIN_ATTEMPTS && reproducedAt === 0 && Date.now() < reproduceUntil; attempt++) {
      if (attempt === 1) await r.inst.bootstrap({ role: 'replica', master, peers, timeoutMs: 60_000 }).catch(() => undefined);
      else await rejoin();
      const settled = await eventually(async () => {
        if (!r.t.running) return 'crashed';
        const u = await upstream();
        return u?.status === 'stopped' || u?.status === 'follow' ? u.status : undefined;
      }, 30_000).catch(() => 'unknown');
      await new Promise((res) => setTimeout(res, 500)); // a CONFIRM may come a moment after the join
      outcomes.push(settled);
      if ((await upstream().catch(() => undefined))?.message?.match(MISMATCH)) reproducedAt = attempt;
      else if (settled === 'follow') {
        await r.inst.rebootstrap({ role: 'replica', master, peers, reason: 'test: rejoin from scratch', timeoutMs: 60_000 }).catch(() => undefined);
      }
    }
    if (reproducedAt === 0) {
      const why = `Tarantool 2.6.0 did not stop with ER_SYNC_MASTER_MISMATCH in ${outcomes.length} rejoins under load (a race; outcomes: ${outcomes.join(', ')}): the repair was not exercised`;
      process.stderr.write(`[rejoin-sync] skipped: ${why}\n`);
      ctx.skip(why);
    }

    // 2. What the agent reports, and what the coordinator's core makes of it.
    const rsOf = async (): Promise<ObservedReplicaSet> => ({
      name: 'storage',
      specReplicas: 3,
      updateRevision: 'rev',
      failover: 'auto',
      paused: false,
      instances: [await observe(m, 0), await observe(r, 1), await observe(w, 2)],
    });
    const first = await rsOf();
    const [mo, ro, wo] = first.instances as [ObservedInstance, ObservedInstance, ObservedInstance];
    expect(stoppedUpstream(ro, mo)?.message).toMatch(MISMATCH);

    const executor = new CommandExecutor({
      instance: r.inst,
      self: 'storage-1',
      logger: pino({ level: 'silent' }),
      knownTerm: () => 1,
      refresh: () => Promise.reject(new Error('not used by execute')),
    });
    let state: PersistedReplicaSet = {
      ...emptyReplicaSet(),
      master: 'storage-0',
      members: [
        { pod: 'storage-0', uuid: mo.instanceUuid, id: mo.tarantool?.id ?? null },
        { pod: 'storage-1', uuid: ro.instanceUuid, id: ro.tarantool?.id ?? null },
        { pod: 'storage-2', uuid: wo.instanceUuid, id: wo.tarantool?.id ?? null },
      ],
      masterQuorum: 2,
    };
    const kinds: string[] = [];
    const reasons: string[] = [];
    // Virtual time: each round is one catch-up timeout later, so the planner escalates without waiting.
    let now = 1_000_000;
    for (let round = 0; round < 4 * (MAX_REPAIR_REBOOTSTRAPS + 1); round++) {
      const rs = await rsOf();
      const step = planReplicationRepair(rs, state, now, T, new Set());
      if (step === null) break;
      reasons.push(step.reason);
      state = step.state;
      const persisted: PersistedState = { term: 1, coordinator: 'storage-0', replicasets: { storage: state } };
      for (const c of step.commands.filter((x): x is Exclude<PlannedAction, { kind: 'event' }> => x.kind !== 'event')) {
        kinds.push(c.kind);
        const cmd = toInstanceCommand(stamp(c, 1, T), persisted, { now, mesh: { size: 3, reachableFromCoordinator: 3 }, replicasets: [rs] }, new Map());
        await executor.execute(cmd, new AbortController().signal).catch(() => undefined);
      }
      // The first remedy ran under load; any later join under sync load may hit the defect again.
      if (round === 0) await m.lua('writing = false');
      // Seen not configured (exited after the rebootstrap, or a join that crashed): restarted, joins.
      if (rs.instances[1]?.tarantool?.configured !== true) await rejoin();
      await new Promise((res) => setTimeout(res, 1_000));
      now += T.catchUpTimeoutMs;
    }
    // A restart would get the same CONFIRM again: the first remedy is the rebootstrap, old files kept aside.
    expect(kinds[0], reasons.join('\n')).toBe('rebootstrap');
    expect(reasons[0]).toMatch(/storage-1 stopped: CONFIRM message arrived .* \(an error a replication restart does not heal\): rebootstrapping it/);
    expect((await readdir(r.t.workDir)).some((f) => f.startsWith('shoal-diverged-'))).toBe(true);
    expect(state.repairs, reasons.join('\n')).toEqual([]);
    expect((await upstream())?.status).toBe('follow');

    // 3. Every acknowledged write is on the repaired replica; its identity never changed.
    const acked = (await m.lua('return acked')) as number[];
    expect(acked.length).toBeGreaterThan(100);
    await r.inst.waitForVclock((await m.inst.state()).vclock, 30_000);
    expect((await m.inst.state()).ro).toBe(false);
    const missing = await r.lua(
      "local n = 0 for _, k in ipairs(require('json').decode(...)) do if box.space.kv:get{k} == nil then n = n + 1 end end return n",
      JSON.stringify(acked),
    );
    expect(missing).toBe(0);
    expect((await r.inst.state()).uuid).toBe(r.inst.identity.instanceUuid);
  }, 300_000);
});
