// Two Tarantool 2.6.0 defects behind the chaos run's crash loops (seed 2026), reproduced with real
// Tarantool, and the coordinator's answer to each, carried out by the agent's executor:
// 1. A replica that joined from scratch holds a snapshot with rows of a synchronous space; every
//    later start dies in box.cfg ("transaction rolled back during snapshot recovery"). Shoal reads
//    that from the files before box.cfg and rebootstraps it (old data kept aside).
// 2. A master killed while its own synchronous transactions waited for their quorum recovers them
//    into its synchronous queue; made writable in place it dies of a SIGSEGV (txn_limbo_ack) at the
//    first replica acknowledgement. Shoal reads that from the files and fails over instead.
import { readdir, readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { toInstanceCommand } from '../../agent/coordinator/actions.js';
import { stamp } from '../../agent/decide/batch.js';
import { CommandExecutor } from '../../agent/member/commands.js';
import { toTarantoolReport } from '../../agent/member/probe.js';
import { planAdmissions } from '../../agent/decide/admission.js';
import { planMasterRecovery } from '../../agent/decide/failover.js';
import { emptyReplicaSet } from '../../agent/decide/members.js';
import { planConfigure } from '../../agent/decide/membership.js';
import type { PlannedAction, DataHazard, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet } from '../../agent/decide/model.js';
import type { Step } from '../../agent/decide/step.js';
import { DEFAULT_TIMINGS as T } from '../../agent/decide/timings.js';
import { recoveryHazard } from '../../agent/tarantool/recovery.js';
import { observedPod } from '../support/observe.js';
import { SYNC_LOAD } from '../support/sync-load.js';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';

// Tarantool 2.6.0's own defects: this file reproduces them on Debian's 2.6.0 whatever the default lane.
const LANE_26 = { lane: '2.6' } as const;

process.env.SHOAL_LOG_LEVEL ??= 'silent';

interface Pod {
  node: Node;
  ordinal: number;
  /** What the agent's probe read from the files before this process's box.cfg. */
  hazard: DataHazard | null;
}

/** What the agent reports: state, and before box.cfg the offline vclock and the hazard read with it. */
async function observe(p: Pod): Promise<ObservedInstance> {
  const { node, ordinal } = p;
  let state = null;
  let offline = null;
  try {
    const r = await node.inst.inspect({ timeoutMs: 5_000 });
    state = r.state;
    if (r.offline) {
      offline = r.offline.vclock;
      p.hazard = recoveryHazard(r.offline);
    }
  } catch {
    // Not answering (exiting, restarting): reported as such.
  }
  return observedPod(node, ordinal, toTarantoolReport({ at: Date.now(), state, error: null, offline, hazard: p.hazard }));
}

async function replicaSet(pods: Pod[]): Promise<ObservedReplicaSet> {
  return { name: 'storage', specReplicas: 3, updateRevision: 'rev', failover: 'auto', paused: false, instances: await Promise.all(pods.map(observe)) };
}

/** The batch as the coordinator's shell sends it: instance commands through each agent's executor. */
async function carryOut(step: Step, pods: Pod[], rs: ObservedReplicaSet): Promise<void> {
  const persisted = { term: 2, coordinator: 'storage-1', replicasets: { storage: step.state } };
  for (const c of step.commands.filter((x): x is Exclude<PlannedAction, { kind: 'event' | 'deletePod' | 'persist' }> => x.kind !== 'event' && x.kind !== 'deletePod' && x.kind !== 'persist')) {
    const pod = pods.find((p) => p.node.inst.identity.pod === c.pod);
    if (!pod) throw new Error(`no pod ${c.pod}`);
    const executor = new CommandExecutor({ instance: pod.node.inst, self: c.pod, logger: pino({ level: 'silent' }), knownTerm: () => 2, refresh: () => Promise.reject(new Error('not used')) });
    const cmd = toInstanceCommand(stamp(c, 2, T), persisted, { now: Date.now(), mesh: { size: 3, reachableFromCoordinator: 3 }, replicasets: [rs] }, new Map());
    await executor.execute(cmd, new AbortController().signal);
  }
}

/** The kubelet's part: the container restarts on the same data directory. */
async function restart(p: Pod): Promise<void> {
  await p.node.t.kill('SIGKILL');
  await p.node.t.spawn();
  await p.node.inst.waitForConsole({ timeoutMs: 60_000 });
  p.hazard = null;
}

function membersOf(pods: Pod[], master: Pod): PersistedReplicaSet {
  return {
    ...emptyReplicaSet(),
    master: master.node.inst.identity.pod,
    members: pods.map((p, i) => ({ pod: p.node.inst.identity.pod, uuid: p.node.inst.identity.instanceUuid, id: i + 1 })),
    masterQuorum: 2,
  };
}

describe('Tarantool 2.6.0 recovery defects and the coordinator (real Tarantool)', () => {
  const fleet = new TarantoolFleet();
  afterEach(() => fleet.cleanup());

  it('a replica that joined under synchronous load dies on every restart; it is rebootstrapped and follows with every acknowledged write', async () => {
    const [m, w, r] = await Promise.all([fleet.node('storage-0', LANE_26), fleet.node('storage-1', LANE_26), fleet.node('storage-2', LANE_26)]);
    const pods: Pod[] = [m, w, r].map((node, ordinal) => ({ node, ordinal, hazard: null }));
    const rp = pods[2] as Pod;
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    const peers = [m.t.address, w.t.address, r.t.address].sort();
    await w.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, timeoutMs: 60_000 });
    await m.inst.reconfigure({ peers, synchroQuorum: 2 });
    await m.lua(SYNC_LOAD);
    await eventually(async () => ((await m.lua('return #acked')) as number) > 50 || undefined, 20_000);
    // storage-2 joins from scratch under load (a join may itself die, "Unknown request type 40": then again, empty).
    for (let attempt = 1; attempt <= 10 && (await r.inst.state().catch(() => null))?.phase !== 'configured'; attempt++) {
      if (attempt > 1) await restart(rp);
      await r.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, timeoutMs: 60_000 }).catch(() => undefined);
    }
    expect((await r.inst.state()).phase).toBe('configured');

    // 1. Reproduce: restarted on its own files, box.cfg dies after replication_synchro_timeout.
    await restart(rp);
    const died = await r.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, synchroTimeoutS: 0.5, timeoutMs: 60_000 }).then(() => false, () => true);
    expect(died).toBe(true);
    await eventually(async () => (r.t.running ? undefined : true), 10_000);
    expect(await readFile(r.t.logPath, 'utf8')).toMatch(/F> transaction rolled back during snapshot recovery/);

    // 2. Restarted again: the agent reads the hazard with the vclock; the coordinator rebootstraps it.
    //    (The load stops first: a join under load can stop on 2.6's sync mismatch, which repair.ts
    //    handles and test/integration/instance-rejoin-sync.test.ts covers.)
    await m.lua('writing = false');
    await new Promise((res) => setTimeout(res, 100));
    await r.t.spawn();
    await r.inst.waitForConsole({ timeoutMs: 60_000 });
    const rs = await replicaSet(pods);
    expect(rs.instances[2]?.tarantool?.hazard?.kind).toBe('unrecoverable-snapshot');
    const step = planConfigure(rs, membersOf(pods, pods[0] as Pod), new Set());
    expect(step?.commands.map((c) => c.kind)).toEqual(['event', 'rebootstrap']);
    expect(step?.reason).toMatch(/storage-2 cannot start on its data \(snapshot \d+\.snap holds rows of synchronous space kv, which Tarantool 2\.6\.0\S* cannot recover .*\): rebootstrapping it from storage-0, old data kept aside/);
    await carryOut(step as Step, pods, rs);
    expect((await readdir(r.t.workDir)).some((f) => f.startsWith('shoal-diverged-'))).toBe(true);

    // 3. It follows the master with every acknowledged write, under the same identity.
    const acked = (await m.lua('return acked')) as number[];
    await r.inst.waitForVclock((await m.inst.state()).vclock, 30_000);
    const missing = await r.lua("local n = 0 for _, k in ipairs(require('json').decode(...)) do if box.space.kv:get{k} == nil then n = n + 1 end end return n", JSON.stringify(acked));
    expect(missing).toBe(0);
    expect((await r.inst.state()).uuid).toBe(r.inst.identity.instanceUuid);
  }, 120_000);

  it('a master restarted with its own unconfirmed synchronous transactions dies once writable; the coordinator promotes a replica instead', async () => {
    const [m, w, r] = await Promise.all([fleet.node('storage-0', LANE_26), fleet.node('storage-1', LANE_26), fleet.node('storage-2', LANE_26)]);
    const pods: Pod[] = [m, w, r].map((node, ordinal) => ({ node, ordinal, hazard: null }));
    const [mp, wp, rp] = pods as [Pod, Pod, Pod];
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    const peers = [m.t.address, w.t.address, r.t.address].sort();
    await w.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, timeoutMs: 60_000 });
    await r.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, timeoutMs: 60_000 });
    await m.inst.reconfigure({ peers, synchroQuorum: 2, synchroTimeoutS: 30 });
    // Both replicas follow before the first synchronous write (it waits for one of their acks).
    const following = async (n: Node): Promise<boolean> =>
      (await n.inst.state()).replication.some((p) => p.uuid === master.uuid && p.upstream?.status === 'follow');
    await eventually(async () => ((await following(w)) && (await following(r))) || undefined, 20_000);
    // The first rows go in before the space turns synchronous (2.6.0 has no space:alter): 2.6.0 can miss a replica's
    // acknowledgement right after the replicas reconnect and stall a synchronous write for the whole
    // replication_synchro_timeout (seen under load); this test is about what comes after.
    await m.lua("local s = box.schema.space.create('kv') s:create_index('pk') for i = 1, 10 do s:insert{i, 'v'} end box.space._space:update({s.id}, {{'=', 6, {is_sync = true}}})");
    expect(await m.lua('return box.space.kv.is_sync')).toBe(true);
    await r.inst.waitForVclock((await m.inst.state()).vclock, 10_000);
    // Both replicas go down; a synchronous insert waits for its quorum; the master is killed.
    await Promise.all([w.t.kill('SIGKILL'), r.t.kill('SIGKILL')]);
    await m.lua("require('fiber').create(function() pcall(box.space.kv.insert, box.space.kv, {11, 'pending'}) end)");
    await new Promise((res) => setTimeout(res, 200));
    await m.t.kill('SIGKILL');
    // The replicas come back first (not waiting long for the dead master; a short synchro timeout
    // keeps the new master's clear_synchro_queue short).
    for (const p of [wp, rp]) {
      await p.node.t.spawn();
      await p.node.inst.waitForConsole({ timeoutMs: 60_000 });
      await p.node.inst.bootstrap({ role: 'replica', master, peers, synchroQuorum: 2, synchroTimeoutS: 1, connectTimeoutS: 1, timeoutMs: 60_000 });
    }

    // 1. The kubelet restarts it: the agent reads its unconfirmed transactions before box.cfg, and
    //    the coordinator decides to promote a replica rather than make it writable in place.
    await m.t.spawn();
    await m.inst.waitForConsole({ timeoutMs: 60_000 });
    const rs = await replicaSet(pods);
    expect(rs.instances[0]?.tarantool?.hazard?.kind).toBe('own-unconfirmed-sync');
    const members = membersOf(pods, mp);
    const step = planMasterRecovery(rs, members, Date.now());
    expect(step?.reason).toMatch(/^promoting storage-[12]: master storage-0 restarted and its own synchronous transactions from lsn \d+ on were never confirmed/);
    expect(step?.commands.filter((c) => c.kind === 'promote').map((c) => c.pod)).toEqual([step?.state.master]);

    // 2. What that avoids, reproduced: made writable in place, it dies at the first acknowledgement.
    await m.inst.bootstrap({ role: 'master', readOnly: true, peers, synchroQuorum: 2, timeoutMs: 60_000 });
    await m.inst.promote({ synchroQuorum: 2, timeoutMs: 30_000 });
    await m.lua("require('fiber').create(function() pcall(box.space.kv.insert, box.space.kv, {12, 'v'}) end)").catch(() => undefined);
    await eventually(async () => (m.t.running ? undefined : true), 10_000);
    const log = await readFile(m.t.logPath, 'utf8');
    expect(log).toMatch(/Segmentation fault/);
    expect(log).toMatch(/txn_limbo_ack/);

    // 3. The promotion: the new master takes writes.
    await carryOut(step as Step, pods, rs);
    const np = step?.state.master === 'storage-1' ? wp : rp;
    expect(await np.node.lua("local ok, e = pcall(box.space.kv.insert, box.space.kv, {13, 'v'}) return ok and 'ok' or tostring(e)")).toBe('ok');

    // 4. The old master, restarted again, is admitted (rejoined or rebootstrapped) and follows.
    await restart(mp);
    let state = step?.state as PersistedReplicaSet;
    for (let round = 0; round < 5 && state.quarantined.length > 0; round++) {
      const now = await replicaSet(pods);
      const admit = planAdmissions(now, state, Date.now(), T);
      if (admit === null) break;
      state = admit.state;
      await carryOut(admit, pods, now).catch(() => undefined);
      if (!m.t.running) await restart(mp);
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(state.quarantined).toEqual([]);
    const u = await eventually(async () => {
      const s = await m.inst.state();
      return s.replication.find((p) => p.uuid === np.node.inst.identity.instanceUuid)?.upstream?.status === 'follow' ? s : undefined;
    }, 20_000);
    expect(u.ro).toBe(true);
    await m.inst.waitForVclock((await np.node.inst.state()).vclock, 10_000);
    expect(m.t.running).toBe(true);
  }, 120_000);
});
