// The write load, the acknowledged-write check and the writable sampler against a real master and
// replica with an is_sync space and replication_synchro_quorum = 2. The failover case documents
// the guarantee the chaos suite relies on (TARANTOOL.md "Synchronous replication"): a write the
// master acknowledged is in the replica's WAL, so promoting the replica (clear_synchro_queue with
// quorum 1 confirms everything it holds) loses no acknowledged write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, TarantoolFleet, type Node } from '../support/tarantool.js';
import { acknowledgedKeys, firstAcknowledgedAfter, startWriteLoad, summarize, verifyAcknowledged, type WriteTarget } from '../../tools/workload.js';
import { startSampler, type Sample, type Sampler } from '../../tools/sampler.js';
import { checkWriteTerms } from '../../tools/write-terms.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const SPACE = 'sync';
const at = (n: Node): WriteTarget => ({ name: n.t.name, console: n.t.consoleSocket });
const atLeast = (get: () => number, n: number) => async () => (get() >= n ? true : undefined);
const writableSets = (samples: readonly Sample[]) => new Set(samples.map((s) => s.writable.join(',')));

describe('write load, acknowledged writes and the writable sampler (master + replica, sync quorum 2)', () => {
  const fleet = new TarantoolFleet();
  let m: Node;
  let r: Node;
  let sampler: Sampler | undefined;

  beforeAll(async () => {
    // 2.6: making a replica writable on purpose (the sampler's positive case) needs no queue claim
    // there; on 3.x the owner's queue keeps every other instance read-only (ro_reason 'synchro').
    [m, r] = await Promise.all([fleet.node('storage-0', { lane: '2.6' }), fleet.node('storage-1', { lane: '2.6' })]);
    // Generous synchro timeout: on a loaded 2-core machine a replica's WAL write can take a while.
    await m.inst.bootstrap({ role: 'master', synchroQuorum: 2, synchroTimeoutS: 10, timeoutMs: 60_000 });
    const master = { uuid: m.inst.identity.instanceUuid, address: m.t.address };
    await r.inst.bootstrap({ role: 'replica', master, peers: [m.t.address], synchroQuorum: 2, synchroTimeoutS: 10, timeoutMs: 60_000 });
    await m.inst.reconfigure({ peers: [m.t.address, r.t.address] });
    await m.lua(`local s = box.schema.space.create('${SPACE}', {is_sync = true}) s:create_index('pk', {type = 'tree', parts = {1, 'unsigned'}})`);
  });
  afterAll(async () => {
    await sampler?.stop();
    await fleet.cleanup();
  });

  it('acknowledges every write while both are up, each on both instances; the sampler sees exactly one writable', async () => {
    sampler = startSampler({ instances: [at(m), at(r)], intervalMs: 25 });
    const load = startWriteLoad({ target: async () => at(m), space: SPACE, intervalMs: 10 });
    await eventually(atLeast(() => load.acknowledged, 60), 60_000);
    await eventually(atLeast(() => sampler?.samples.length ?? 0, 10), 30_000);
    const s = await load.stop();
    const samples = await sampler.stop();
    sampler = undefined;

    expect(s.failed).toBe(0);
    // A loaded machine may stall a write past 2 × interval: such a gap has no failures in it.
    expect(s.gaps.every((g) => g.failures === 0 && !g.open)).toBe(true);
    expect(s.acknowledged).toBeGreaterThanOrEqual(60);
    expect(s.attempted).toBe(s.acknowledged);
    expect(acknowledgedKeys(load.log)).toEqual(Array.from({ length: s.acknowledged }, (_, i) => i + 1));
    expect(s.timeline.successes.reduce((a, b) => a + b, 0)).toBe(s.acknowledged);

    const checks = await verifyAcknowledged(load.log, [at(m), at(r)], { settleMs: 10_000 });
    for (const c of checks) expect(c).toMatchObject({ missing: [], keysRead: s.acknowledged });
    expect(checks[0]?.error).toBeUndefined();
    expect(checks[1]?.error).toBeUndefined();

    expect(samples.every((x) => x.instances.every((i) => i.answered))).toBe(true);
    expect(writableSets(samples)).toEqual(new Set(['storage-0']));
    expect(samples.every((x) => x.endedAt >= x.startedAt && x.spreadMs >= 0)).toBe(true);
  });

  it('the sampler reports two writable instances when the replica is made writable on purpose', async () => {
    sampler = startSampler({ instances: [at(m), at(r)], intervalMs: 25 });
    await eventually(atLeast(() => sampler?.samples.length ?? 0, 3), 30_000);
    expect(sampler.dualWritableSamples()).toEqual([]);
    await r.inst.reconfigure({ readOnly: false });
    try {
      await eventually(async () => (sampler && sampler.dualWritableSamples().length > 0 ? true : undefined), 30_000);
    } finally {
      await r.inst.reconfigure({ readOnly: true });
    }
    const samples = await sampler.stop();
    sampler = undefined;
    const dual = samples.filter((x) => x.writable.length >= 2);
    expect(dual.length).toBeGreaterThan(0);
    expect(dual[0]?.writable).toEqual(['storage-0', 'storage-1']);
    expect(dual[0]?.instances.map((i) => [i.name, i.ro, i.status])).toEqual([
      ['storage-0', false, 'running'],
      ['storage-1', false, 'running'],
    ]);
  });

  it('kill the master mid-load: failures and a gap are recorded, the promoted replica has every acknowledged write', async () => {
    let current: Node = m;
    sampler = startSampler({ instances: [at(m), at(r)], intervalMs: 25 });
    const load = startWriteLoad({ target: async () => at(current), space: SPACE, intervalMs: 10, firstKey: 1_000_000 });
    await eventually(atLeast(() => load.acknowledged, 40), 60_000);

    await m.t.kill('SIGKILL');
    const killedAt = performance.timeOrigin + performance.now(); // after exit: no later write can reach it
    await eventually(atLeast(() => load.failed, 1), 30_000);
    // The coordinator's promotion by hand: a short synchro timeout bounds clear_synchro_queue's
    // wait (2 × timeout) for a transaction the dead master left pending.
    await r.inst.reconfigure({ synchroTimeoutS: 1 });
    await r.inst.promote({ synchroQuorum: 1, timeoutMs: 60_000 });
    current = r;
    const before = load.acknowledged;
    await eventually(atLeast(() => load.acknowledged, before + 30), 60_000);
    const s = await load.stop();
    const samples = await sampler.stop();
    sampler = undefined;

    const onOld = load.log.attempts.filter((a) => a.ok && a.target === 'storage-0');
    const onNew = load.log.attempts.filter((a) => a.ok && a.target === 'storage-1');
    expect(onOld.length).toBeGreaterThanOrEqual(40);
    expect(onNew.length).toBeGreaterThanOrEqual(30);
    expect(s.failed).toBeGreaterThanOrEqual(1);
    expect(load.log.attempts.filter((a) => !a.ok).every((a) => a.error && a.errorKind && a.errorKind !== 'aborted')).toBe(true);

    // The outage: from the first failed write to the first write acknowledged by the new master.
    // (It can be shorter than the 2 × interval threshold here: every gap is looked at.)
    const firstFailure = load.log.attempts.find((a) => !a.ok);
    const recovered = firstAcknowledgedAfter(load.log, killedAt);
    expect(firstFailure && recovered).toBeTruthy();
    expect(recovered?.target).toBe('storage-1');
    const outage = summarize(load.log, { gapThresholdMs: 0 }).gaps.find((g) => g.from === firstFailure?.startedAt);
    expect(outage).toMatchObject({ to: recovered?.endedAt, open: false, failures: s.failed });
    expect(s.longestGapMs).toBeGreaterThanOrEqual(outage?.ms ?? Infinity);
    expect(s.unavailableMs).toBeLessThanOrEqual(s.durationMs);

    // The guarantee: every acknowledged write, old master's and new master's, is on the survivor.
    const [check] = await verifyAcknowledged(load.log, [at(r)]);
    expect(check).toMatchObject({ name: 'storage-1', missing: [] });
    expect(check?.error).toBeUndefined();
    // The dead master is reported as unreadable, not as missing nothing.
    const [dead] = await verifyAcknowledged(load.log, [at(m)], { callTimeoutMs: 2_000 });
    expect(dead?.error).toBeTruthy();

    // 2.6.0 has no synchronous queue term: the write-history check has nothing to read.
    expect(load.log.attempts.filter((a) => a.ok).every((a) => a.term === null)).toBe(true);

    // Never two writable; the dead master is unknown, not writable.
    expect(samples.filter((x) => x.writable.length >= 2)).toEqual([]);
    expect(samples.at(-1)?.writable).toEqual(['storage-1']);
    expect(samples.at(-1)?.instances.find((i) => i.name === 'storage-0')).toMatchObject({ answered: false, writable: false });
  });
});

// The write-history check of two writable instances (tools/write-terms.ts) reads the synchronous
// queue term each write was admitted under: on Tarantool 3.x, a switchover claims a newer one.
describe('the queue term of every acknowledged write (Tarantool 3.x)', () => {
  const fleet = new TarantoolFleet();
  afterAll(() => fleet.cleanup());

  it('a switchover moves the writes to a newer term on the new master; the history check finds nothing', async () => {
    const [m3, r3] = await Promise.all([fleet.node('storage-0', { lane: '3' }), fleet.node('storage-1', { lane: '3' })]);
    await m3.inst.bootstrap({ role: 'master', synchroQuorum: 2, synchroTimeoutS: 10, timeoutMs: 60_000 });
    await r3.inst.bootstrap({ role: 'replica', master: { uuid: m3.inst.identity.instanceUuid, address: m3.t.address }, peers: [m3.t.address], synchroQuorum: 2, synchroTimeoutS: 10, timeoutMs: 60_000 });
    await m3.inst.reconfigure({ peers: [m3.t.address, r3.t.address] });
    await r3.inst.reconfigure({ peers: [m3.t.address, r3.t.address] });
    await m3.lua(`local s = box.schema.space.create('${SPACE}', {is_sync = true}) s:create_index('pk', {type = 'tree', parts = {1, 'unsigned'}})`);
    let current: Node = m3;
    const load = startWriteLoad({ target: async () => at(current), space: SPACE, intervalMs: 10 });
    await eventually(atLeast(() => load.acknowledged, 20), 60_000);
    // A switchover by hand: the old master read-only, the replica caught up and promoted.
    await m3.inst.fence();
    await r3.inst.waitForVclock((await m3.inst.state()).vclock, 10_000);
    await r3.inst.promote({ synchroQuorum: 2, timeoutMs: 30_000 });
    current = r3;
    const before = load.acknowledged;
    await eventually(atLeast(() => load.acknowledged, before + 20), 60_000);
    await load.stop();

    const acked = load.log.attempts.filter((a) => a.ok);
    const termOf = (name: string): Set<number | null | undefined> => new Set(acked.filter((a) => a.target === name).map((a) => a.term));
    const [oldTerm] = [...termOf('storage-0')];
    const [newTerm] = [...termOf('storage-1')];
    expect(termOf('storage-0').size).toBe(1);
    expect(termOf('storage-1').size).toBe(1);
    expect(typeof oldTerm).toBe('number');
    expect(newTerm).toBeGreaterThan(oldTerm as number);
    const check = checkWriteTerms([load.log]);
    expect(check).toMatchObject({ checked: acked.length, withoutTerm: 0, violations: [] });
    expect(check.terms.map((t) => t.instances)).toEqual([['storage-0'], ['storage-1']]);

    // And the finding it exists for: the old master made writable again without a promote (two
    // writable) takes a write under its old term after the new master acknowledged.
    const forged = { ...load.log, attempts: [...load.log.attempts, { seq: 0, key: 0, startedAt: (acked.at(-1)?.endedAt ?? 0) + 1, endedAt: (acked.at(-1)?.endedAt ?? 0) + 2, ok: true, target: 'storage-0', term: oldTerm ?? null }] };
    expect(checkWriteTerms([forged]).violations).toHaveLength(1);
  });
});
