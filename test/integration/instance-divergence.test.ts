// Issue 12, item 4, with real Tarantool: a replica holding a row the master lacks, and the master
// writing the same key, stops the replica's applier with ER_TUPLE_FOUND: the data sets differ. The
// coordinator's core decides on what the agents really report (never a replication restart: a
// Warning Event `Diverged` with both vclocks, the member marked in /status's view) and the agents'
// executors carry its commands out — a rebootstrap with the same identity, the old files kept in
// shoal-diverged-*/ — until the replica follows again: the master's row on both, the replica's row
// in its kept-aside xlog, nothing deleted.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { toInstanceCommand } from '../../agent/coordinator/actions.js';
import { CommandExecutor } from '../../agent/member/commands.js';
import { toTarantoolReport } from '../../agent/member/probe.js';
import { buildClusterView } from '../../agent/wire/cluster-view.js';
import { upstreamCondition } from '../../agent/decide/divergence.js';
import { emptyReplicaSet } from '../../agent/decide/members.js';
import type { Action, ObservedCluster, ObservedInstance, ObservedReplicaSet, PersistedState } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { DEFAULT_TIMINGS as T } from '../../agent/decide/timings.js';
import type { TarantoolLane } from '../../demo/tarantool-binaries.js';
import type { StatusReplicaSet } from '../../common/status.js';
import { observedPod } from '../support/observe.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const DUPLICATE = /^Duplicate key exists in unique index ["']pk["'] in space ["']t["']/;
/** Rounds, each ROUND_PAUSE_MS of real time apart: bounds the whole repair to 20 s. */
const ROUNDS = 80;
const ROUND_PAUSE_MS = 250;

async function observe(node: Node, ordinal: number): Promise<ObservedInstance> {
  let state = null;
  let offline = null;
  try {
    // Before box.cfg the agent reports its data directory's vclock, read offline.
    const r = await node.inst.inspect({ timeoutMs: 5_000 });
    state = r.state;
    offline = r.offline?.vclock ?? null;
  } catch {
    // Not answering (exiting after moving its data aside, restarting): reported as such.
  }
  return observedPod(node, ordinal, toTarantoolReport({ at: Date.now(), state, error: null, offline }));
}

/** The kept-aside directories under `dir`, each with its files. */
async function aside(dir: string): Promise<Array<{ dir: string; files: string[] }>> {
  const out: Array<{ dir: string; files: string[] }> = [];
  for (const name of await readdir(dir)) {
    if (name.startsWith('shoal-diverged-')) out.push({ dir: join(dir, name), files: await readdir(join(dir, name)) });
  }
  return out;
}

describe.each<[TarantoolLane]>([['3'], ['2.6']])('a diverged replica (Tarantool lane %s)', (lane) => {
  const fleet = new TarantoolFleet();
  afterEach(() => fleet.cleanup());

  it('is reported as diverged, never restarted, and rebootstrapped with its row kept aside', async () => {
    const [m, r] = await Promise.all([fleet.node('storage-0', { lane }), fleet.node('storage-1', { lane })]);
    const peers = [m.t.address, r.t.address].sort();
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    await m.lua("local s = box.schema.space.create('t') s:create_index('pk') for i = 1, 5 do s:insert{i, 'common'} end");
    await r.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, timeoutMs: 60_000 });
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);

    // The master stops pulling from the replica; the replica, writable for a moment, writes a row
    // the master never gets; the master writes the same key, which stops the replica's applier.
    // On 3.x a replica is read-only while another instance owns the synchronous queue: the master
    // releases it for that moment (box.ctl.demote) and claims it again (the agent's promote).
    if (lane === '3') {
      await m.lua('box.ctl.demote()');
      await eventually(async () => ((await r.lua('return box.info.synchro.queue.owner')) === 0 ? true : undefined));
    }
    await m.inst.reconfigure({ peers: [m.t.address], synchroQuorum: 2 });
    await r.lua("box.cfg{read_only = false} box.space.t:insert{100, 'replica only'} box.cfg{read_only = true}");
    if (lane === '3') await m.inst.promote({ synchroQuorum: 2, timeoutMs: 30_000 });
    await m.lua("box.space.t:insert{100, 'master'}");
    const upstream = async (node: Node, from: Node) => (await node.inst.state()).replication.find((p) => p.uuid === from.inst.identity.instanceUuid)?.upstream;
    const stopped = await eventually(async () => {
      const u = await upstream(r, m);
      return u?.status === 'stopped' ? u : undefined;
    });
    expect(stopped.message).toMatch(DUPLICATE);
    // Full mesh again, as the membership wants: the master now pulls the replica's row, and stops
    // on it too (the replica holds it, the master never will).
    await m.inst.reconfigure({ peers, synchroQuorum: 2 });
    await eventually(async () => ((await upstream(m, r))?.status === 'stopped' ? true : undefined));

    // The coordinator's rounds: its pure core decides on what the agents report, their executors act.
    const executors = new Map(
      [m, r].map((node) => [
        node.inst.identity.pod,
        new CommandExecutor({ instance: node.inst, self: node.inst.identity.pod, logger: pino({ level: 'silent' }), knownTerm: () => 1, refresh: () => Promise.reject(new Error('not used by execute')) }),
      ]),
    );
    const rsOf = async (): Promise<ObservedReplicaSet> => ({
      name: 'storage',
      specReplicas: 2,
      updateRevision: 'rev',
      failover: 'auto',
      paused: false,
      instances: [await observe(m, 0), await observe(r, 1)],
    });
    const first = await rsOf();
    const [mo, ro] = first.instances as [ObservedInstance, ObservedInstance];
    const fromMaster = ro.tarantool?.upstreams.find((u) => u.uuid === mo.instanceUuid);
    expect(fromMaster && upstreamCondition(fromMaster)).toBe('diverged');
    let persisted: PersistedState = {
      term: 1,
      coordinator: 'storage-0',
      replicasets: {
        storage: {
          ...emptyReplicaSet(),
          master: 'storage-0',
          members: [
            { pod: 'storage-0', uuid: mo.instanceUuid, id: mo.tarantool?.id ?? null },
            { pod: 'storage-1', uuid: ro.instanceUuid, id: ro.tarantool?.id ?? null },
          ],
          masterQuorum: 2,
        },
      },
    };
    const actions: Action[] = [];
    const reasons: string[] = [];
    let view: StatusReplicaSet | undefined;
    // Virtual time: each round one catch-up timeout later, so the repair's watch ends without waiting.
    let now = 1_000_000;
    for (let round = 0; round < ROUNDS; round++) {
      const rs = await rsOf();
      const observed: ObservedCluster = { now, mesh: { size: 2, reachableFromCoordinator: 2 }, replicasets: [rs] };
      const result = reconcile(observed, persisted, T);
      reasons.push(result.reason);
      view ??= buildClusterView(observed, result.nextPersisted, result.replicasets, new Map(), T, 'storage-0').replicasets[0];
      for (const action of result.actions) {
        actions.push(action);
        if (action.kind === 'persist') persisted = action.state;
        if (action.kind === 'persist' || action.kind === 'event' || action.kind === 'deletePod') continue;
        const cmd = toInstanceCommand(action, persisted, observed, new Map());
        await executors.get(action.pod)?.execute(cmd, new AbortController().signal);
      }
      // The kubelet's part: a container whose Tarantool exited (moving its data aside) restarts.
      if (!r.t.running) {
        await r.t.spawn();
        await r.inst.waitForConsole({ timeoutMs: 60_000 });
      }
      if (round > 0 && persisted.replicasets['storage']?.repairs.length === 0) break;
      now += T.catchUpTimeoutMs;
      await new Promise((res) => setTimeout(res, ROUND_PAUSE_MS)); // real time for the rejoin to progress

    }
    const trace = `${reasons.join('\n')}\nstorage-1 replication: ${JSON.stringify((await r.inst.state()).replication)}`;

    // Reported as divergence, with both vclocks and the row the master lacks; never a restart.
    const kinds = actions.map((a) => ('pod' in a ? `${a.kind}:${a.pod}` : a.kind));
    expect(kinds, trace).not.toContain('restartReplication:storage-1');
    expect(kinds.filter((k) => k.startsWith('rebootstrap')), trace).toEqual(['rebootstrap:storage-1']);
    const events = actions.filter((a): a is Extract<Action, { kind: 'event' }> => a.kind === 'event');
    const diverged = events.filter((e) => e.eventReason === 'Diverged');
    expect(diverged, trace).toHaveLength(1);
    const mid = mo.tarantool?.id ?? 0;
    const rid = ro.tarantool?.id ?? 0;
    expect(diverged[0]).toMatchObject({ eventType: 'Warning' });
    expect(diverged[0]?.reason).toMatch(/^storage-1 diverged from storage-0: its applier stopped on a conflicting row \(Duplicate key exists/);
    expect(diverged[0]?.reason).toContain(`storage-1 holds rows storage-0 lacks (${rid}: 1 > 0)`);
    expect(diverged[0]?.reason).toMatch(new RegExp(`storage-1 \\{${mid}: \\d+, ${rid}: 1\\}, storage-0 \\{${mid}: \\d+\\}`));
    expect(view?.instances.find((i) => i.pod === 'storage-1')).toMatchObject({
      healthy: false,
      diverged: { from: 'storage-0', error: expect.stringMatching(DUPLICATE) as unknown, repair: 'rebootstrapping' },
    });

    // Repaired: the replica follows the master again, with the master's row.
    expect(persisted.replicasets['storage']?.repairs, trace).toEqual([]);
    expect((await upstream(r, m))?.status).toBe('follow');
    expect(await r.lua('return box.info.id')).toBe(rid);
    await r.inst.waitForVclock((await m.inst.state()).vclock, 20_000);
    expect(await r.lua('return box.space.t:get{100}[2]')).toBe('master');
    expect(await m.lua('return box.space.t:get{100}[2]')).toBe('master');
    expect(await m.lua('return box.space.t:count()')).toBe(6);

    // Nothing lost silently: the replica's old files are aside, with a note naming the divergence,
    // and its own row is in the kept xlog.
    const kept = await aside(r.t.workDir);
    expect(kept).toHaveLength(1);
    const [dir] = kept;
    expect(dir?.files.some((f) => f.endsWith('.snap'))).toBe(true);
    expect(await readFile(join(dir?.dir ?? '', 'SHOAL-README.txt'), 'utf8')).toContain(`storage-1 holds rows storage-0 lacks (${rid}: 1 > 0)`);
    const xlogs = (dir?.files ?? []).filter((f) => f.endsWith('.xlog')).map((f) => join(dir?.dir ?? '', f));
    const found = await r.lua(
      "local paths = ... for path in paths:gmatch('[^;]+') do for _, row in require('xlog').pairs(path) do " +
        "if row.BODY and row.BODY.tuple and row.BODY.tuple[2] == 'replica only' then return true end end end return false",
      xlogs.join(';'),
    );
    expect(found).toBe(true);
  });
});
