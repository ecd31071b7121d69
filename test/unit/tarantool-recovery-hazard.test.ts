// Tarantool 2.6.0's recovery defects (agent/tarantool/recovery.ts): what the agent reads from the
// files, how it reports it, and what the coordinator decides on it.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { LocalProbe, toTarantoolReport, toWireInstance, type LocalSnapshot } from '../../agent/member/probe.js';
import type { DataHazard, PersistedReplicaSet } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { recoveryHazard } from '../../agent/tarantool/recovery.js';
import type { InstanceState, OfflineVclock } from '../../agent/instance/state.js';
import { parseMessage } from '../../agent/wire/mesh-protocol.js';
import { cluster, formed, kinds, NOW, only, patch, persisted, T } from './decide-fixtures.js';

const V260 = '2.6.0-0-g47aa4e01e';

function offline(over: Partial<OfflineVclock> = {}): OfflineVclock {
  return { vclock: { '1': 20 }, empty: false, snapshot: '00000000000000000012.snap', xlogsRead: 1, warnings: [], dirs: { work: '/d', memtx: '/d', wal: '/d', vinyl: '/d' }, tarantool: V260, unconfirmed: {}, ownId: 2, ...over };
}

describe('recoveryHazard', () => {
  it.each<[string, Partial<OfflineVclock>, DataHazard['kind'] | null]>([
    ['nothing in the way', {}, null],
    ['a snapshot with rows of a synchronous space', { syncSnapshotSpace: 'kv' }, 'unrecoverable-snapshot'],
    ['its own unconfirmed synchronous rows', { unconfirmed: { '2': 18 } }, 'own-unconfirmed-sync'],
    ['another instance’s unconfirmed rows (clear_synchro_queue settles those)', { unconfirmed: { '1': 18 } }, null],
    ['unconfirmed rows while its own id is unknown', { unconfirmed: { '2': 18 }, ownId: undefined }, null],
    ['a version the defects were not seen with', { syncSnapshotSpace: 'kv', unconfirmed: { '2': 18 }, tarantool: '2.10.4-0-g0a4ae6b' }, null],
    ['a shoal.lua that does not report the version', { syncSnapshotSpace: 'kv', tarantool: undefined }, null],
    ['both: the snapshot comes first (box.cfg never gets further)', { syncSnapshotSpace: 'kv', unconfirmed: { '2': 18 } }, 'unrecoverable-snapshot'],
  ])('%s', (_name, over, kind) => {
    const h = recoveryHazard(offline(over));
    expect(h?.kind ?? null).toBe(kind);
    if (h) expect(h.reason).toMatch(/Tarantool 2\.6\.0/);
  });

  it('words each hazard for the people reading the events', () => {
    expect(recoveryHazard(offline({ syncSnapshotSpace: 'kv' }))?.reason).toBe(
      `snapshot 00000000000000000012.snap holds rows of synchronous space kv, which Tarantool ${V260} cannot recover (box.cfg dies with "transaction rolled back during snapshot recovery")`,
    );
    expect(recoveryHazard(offline({ unconfirmed: { '2': 18 } }))).toMatchObject({ reason: expect.stringMatching(/^its own synchronous transactions from lsn 18 on were never confirmed/) as unknown, uncommittedFrom: { id: 2, lsn: 18 } });
  });
});

describe('the hazard in reports', () => {
  const state = (over: Partial<InstanceState>): InstanceState => ({ phase: 'waiting', configured: false, pid: 42, attempt: 0, notes: {}, vclock: {}, replication: [], role: 'unconfigured', ...over });
  const snapshot: DataHazard = { kind: 'unrecoverable-snapshot', reason: 'snapshot x' };
  const own: DataHazard = { kind: 'own-unconfirmed-sync', reason: 'own rows', uncommittedFrom: { id: 2, lsn: 18 } };
  const configured: Partial<InstanceState> = { phase: 'configured', configured: true, ro: true, status: 'running', id: 2, role: 'replica' };

  it.each<[string, LocalSnapshot, DataHazard | undefined]>([
    ['before box.cfg, with the vclock it was read with', { at: 1, state: state({}), error: null, offline: { '1': 3 }, hazard: snapshot }, snapshot],
    ['an unrecoverable snapshot no longer matters once configured (rebootstrapped in place)', { at: 1, state: state(configured), error: null, offline: null, hazard: snapshot }, undefined],
    ['own unconfirmed transactions still matter once configured', { at: 1, state: state(configured), error: null, offline: null, hazard: own }, own],
    ['none known', { at: 1, state: state({}), error: null, offline: { '1': 3 }, hazard: null }, undefined],
  ])('%s', (_name, s, want) => {
    expect(toTarantoolReport(s).hazard).toEqual(want);
    const hb = { type: 'heartbeat', v: 1, pod: 's-0', term: 1, sentAt: 1, agentVersion: 'x', sees: [], instance: toWireInstance(s) };
    const parsed = parseMessage(JSON.stringify(hb));
    expect(parsed.ok && parsed.msg.type === 'heartbeat' ? parsed.msg.instance.tarantool : null).toEqual(toTarantoolReport(s));
  });

  it('the probe keeps own unconfirmed transactions for the process until it follows another master', async () => {
    let current = state({});
    const probe = new LocalProbe({
      instance: { state: () => Promise.resolve(current), offlineVclock: () => Promise.resolve(offline({ unconfirmed: { '2': 18 } })) },
      logger: pino({ level: 'silent' }),
      intervalMs: 1_000,
      timeoutMs: 1_000,
    });
    const hazard = async (): Promise<DataHazard['kind'] | undefined> => toTarantoolReport(await probe.refresh()).hazard?.kind;
    expect(await hazard()).toBeUndefined(); // not read yet: never reported without its vclock
    await new Promise((res) => setImmediate(res));
    expect(await hazard()).toBe('own-unconfirmed-sync');
    current = state({ ...configured, notes: {} });
    expect(await hazard()).toBe('own-unconfirmed-sync');
    current = state({ ...configured, notes: { masterUuid: 'uuid-m' } });
    expect(await hazard()).toBeUndefined();
    current = state({ ...configured, notes: {} });
    expect(await hazard()).toBeUndefined();
    current = state({ pid: 43 }); // a new process reads its files again
    await probe.refresh();
    await new Promise((res) => setImmediate(res));
    expect(await hazard()).toBe('own-unconfirmed-sync');
  });

  it('refuses a hazard of an unknown kind on the wire', () => {
    const s: LocalSnapshot = { at: 1, state: state({}), error: null, offline: {}, hazard: snapshot };
    const hb = { type: 'heartbeat', v: 1, pod: 's-0', term: 1, sentAt: 1, agentVersion: 'x', sees: [], instance: { ...toWireInstance(s), tarantool: { ...toTarantoolReport(s), hazard: { kind: 'other', reason: 'x' } } } };
    expect(parseMessage(JSON.stringify(hb)).ok).toBe(false);
  });
});

describe('the coordinator on a hazard', () => {
  const { rs, state } = formed('s', 3, 0);
  const unrecoverable: DataHazard = { kind: 'unrecoverable-snapshot', reason: 'snapshot 1.snap holds rows of synchronous space kv' };
  const ownUnconfirmed: DataHazard = { kind: 'own-unconfirmed-sync', reason: 'its own synchronous transactions from lsn 11 on were never confirmed', uncommittedFrom: { id: 1, lsn: 11 } };
  const waiting = (hazard: DataHazard) => ({ tarantool: { configured: false, ro: true, status: 'unconfigured', vclock: { 1: 10 }, id: null, upstreamOk: false, upstreams: [], lagMs: null, replication: [], synchroQuorum: null, clusterUuids: null, hazard } });
  const masterUp = patch(rs, 's-0', { tarantool: { ro: false } });

  it('rebootstraps a restarted replica that cannot start on its data, with an event, instead of configuring it', () => {
    const r = reconcile(cluster(NOW, patch(masterUp, 's-2', waiting(unrecoverable))), persisted(4, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['rebootstrap:s-2']);
    const event = only(r.actions, 'event')[0];
    expect(event).toMatchObject({ eventType: 'Warning', eventReason: 'Rebootstrap' });
    expect(event?.reason).toBe('s-2 cannot start on its data (snapshot 1.snap holds rows of synchronous space kv): rebootstrapping it from s-0, old data kept aside');
  });

  it('waits, saying why, when there is no writable master to rebootstrap it from', () => {
    const noMaster = patch(patch(rs, 's-0', { tarantool: { ro: true, status: 'orphan' } }), 's-2', waiting(unrecoverable));
    const r = reconcile(cluster(NOW, noMaster), persisted(4, { s: state }), T);
    expect(only(r.actions, 'rebootstrap')).toEqual([]);
    expect(only(r.actions, 'joinReplica')).toEqual([]);
    expect(r.reason).toMatch(/s-2 cannot start on its data \(.*\): waiting for a writable master with the full synchro quorum to rebootstrap it from/);
  });

  it('promotes a replica instead of configuring a master that cannot start on its data', () => {
    const r = reconcile(cluster(NOW, patch(rs, 's-0', waiting(unrecoverable))), persisted(4, { s: state }), T);
    expect(kinds(r.actions)).toEqual(['persist', 'reconfigure:s-2', 'promote:s-1']);
    expect(r.nextPersisted.replicasets.s).toMatchObject({ master: 's-1', quarantined: [{ pod: 's-0', why: 'old-master' }] });
    expect(r.reason).toMatch(/promoting s-1: master s-0 restarted and snapshot 1\.snap holds rows of synchronous space kv; s-1 has the greatest vclock/);
  });

  it.each([
    ['before its box.cfg', waiting(ownUnconfirmed)],
    ['configured read-only', { tarantool: { ro: true, hazard: ownUnconfirmed } }],
  ])('never makes a master with its own unconfirmed transactions writable in place (%s): a replica is promoted', (_name, over) => {
    const r = reconcile(cluster(NOW, patch(rs, 's-0', over)), persisted(4, { s: state }), T);
    expect(only(r.actions, 'promote').map((a) => a.pod)).toEqual(['s-1']);
    expect(r.nextPersisted.term).toBe(5);
    expect(r.reason).toMatch(/promoting s-1: master s-0 restarted and its own synchronous transactions from lsn 11 on were never confirmed; s-1 has the greatest vclock \{1: 10\} of 3 answering members/);
  });

  it.each([
    ['one that has every row the master committed', { 1: 10 }, 's-1'],
    ['itself in place after all when the replica lacks rows the master committed (waiting would stop writes for good)', { 1: 9 }, null],
  ])('down to it and one replica, the master votes with its committed rows: promotes %s', (_name, replica, promoted) => {
    // The master's rows 11 and 12 never committed; 1..10 did.
    const alone = patch(patch(patch(rs, 's-0', { tarantool: { ro: true, vclock: { 1: 12 }, hazard: ownUnconfirmed } }), 's-1', { tarantool: { vclock: replica } }), 's-2', { agentReachable: false, tarantool: null });
    const r = reconcile(cluster(NOW, alone), persisted(4, { s: state }), T);
    expect(only(r.actions, 'promote').map((a) => a.pod)).toEqual([promoted ?? 's-0']);
    if (promoted === null) expect(r.reason).toMatch(/nobody else can be elected \(s-0 \{1: 10\} has rows s-1 \{1: 9\} lacks and cannot be promoted: it cannot serve writes in place\), so despite master s-0 restarted and .*: making it writable/);
  });

  it('when too few members answer to promote another, makes a configured master writable in place after all, and waits for one not configured yet', () => {
    const { uncommittedFrom: _, ...unknownCommitted } = ownUnconfirmed;
    const alone = patch(patch(rs, 's-0', { tarantool: { ro: true, hazard: unknownCommitted } }), 's-2', { agentReachable: false, tarantool: null });
    const r = reconcile(cluster(NOW, alone), persisted(4, { s: state }), T);
    expect(only(r.actions, 'promote').map((a) => a.pod)).toEqual(['s-0']);
    expect(r.reason).toMatch(/nobody else can be elected \(only 1 of 3 members answer, 2 needed.*\), so despite master s-0 restarted and its own synchronous transactions/);
    const before = patch(patch(rs, 's-0', waiting(unknownCommitted)), 's-2', { agentReachable: false, tarantool: null });
    const w = reconcile(cluster(NOW, before), persisted(4, { s: state }), T);
    expect(only(w.actions, 'promote')).toEqual([]);
    expect(w.reason).toMatch(/master s-0 restarted and its own synchronous transactions .*; cannot elect another: only 1 of 3 members answer, 2 needed/);
  });

  it('rebootstraps a quarantined old master that cannot start on its data rather than letting it rejoin', () => {
    const after: PersistedReplicaSet = { ...state, master: 's-1', quarantined: [{ pod: 's-0', why: 'old-master', sinceMs: NOW - 60_000, rebootstrapRequestedAtMs: null }] };
    const observed = patch(patch(rs, 's-1', { tarantool: { ro: false, vclock: { 1: 10, 2: 4 } } }), 's-0', waiting(unrecoverable));
    const r = reconcile(cluster(NOW, observed), persisted(9, { s: after }), T);
    expect(kinds(r.actions)).toContain('rebootstrap:s-0');
    expect(kinds(r.actions)).not.toContain('joinReplica:s-0');
    expect(only(r.actions, 'event').find((e) => e.eventReason === 'Rebootstrap')?.reason).toMatch(/^s-0 cannot start on its data \(snapshot 1\.snap/);
  });
});
