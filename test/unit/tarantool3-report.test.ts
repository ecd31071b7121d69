// What an agent reports about a Tarantool 3 instance (the synchronous queue's owner and term, the
// version) through the probe, the mesh heartbeat and /status, and how it refuses a version Shoal
// does not drive.
import { describe, expect, it } from 'vitest';
import { toTarantoolReport, toWireInstance, type LocalSnapshot } from '../../agent/member/probe.js';
import { statusDocument, NO_CLUSTER_STATUS } from '../../agent/http/status.js';
import { identityOf } from '../../agent/instance/identity.js';
import type { InstanceState } from '../../agent/instance/state.js';
import { parseMessage } from '../../agent/wire/mesh-protocol.js';

const V38 = '3.8.0-0-gdce7be8a79';
const identity = identityOf({ namespace: 'ns', cluster: 'c', pod: 's-0', replicaset: 's', bindHost: '127.0.0.1', podIp: '127.0.0.1', listenPort: 3301 });
const master: InstanceState = {
  phase: 'configured',
  version: V38,
  configured: true,
  pid: 42,
  attempt: 1,
  notes: {},
  id: 1,
  uuid: identity.instanceUuid,
  ro: false,
  status: 'running',
  synchro: { owner: 1, term: 3, len: 0, quorum: 2 },
  vclock: { '1': 7 },
  replication: [],
  role: 'master',
  lag: 0,
};
const snap = (state: InstanceState): LocalSnapshot => ({ at: 1, state, error: null, offline: null });
const heartbeat = (s: LocalSnapshot, tarantool: object = toTarantoolReport(s)): string =>
  JSON.stringify({ type: 'heartbeat', v: 1, pod: 's-0', term: 1, sentAt: 1, agentVersion: 'x', sees: [], instance: { ...toWireInstance(s), tarantool } });

describe('Tarantool 3 reports', () => {
  it('carries the synchronous queue from the probe over the wire to the coordinator', () => {
    const report = toTarantoolReport(snap(master));
    expect(report.synchro).toEqual({ owner: 1, term: 3, len: 0 });
    const parsed = parseMessage(heartbeat(snap(master)));
    expect(parsed.ok && parsed.msg.type === 'heartbeat' ? parsed.msg.instance.tarantool?.synchro : 'not parsed').toEqual({ owner: 1, term: 3, len: 0 });
  });

  it('refuses a malformed queue on the wire, accepts null (2.6) and absence (an older agent)', () => {
    const s = snap(master);
    const base = toTarantoolReport(s);
    expect(parseMessage(heartbeat(s, { ...base, synchro: { owner: 'x', term: 1, len: 0 } })).ok).toBe(false);
    expect(parseMessage(heartbeat(s, { ...base, synchro: null })).ok).toBe(true);
    const { synchro: _gone, ...older } = base;
    expect(parseMessage(heartbeat(s, older)).ok).toBe(true);
  });

  it('shows the version and the queue in /status', () => {
    const doc = statusDocument(identity, master, NO_CLUSTER_STATUS);
    expect(doc.instance).toMatchObject({ version: V38, synchro: { owner: 1, term: 3, len: 0 }, role: 'master', status: 'running' });
    const old = statusDocument(identity, { ...master, version: '2.6.0-0-g47aa4e01e', synchro: undefined }, NO_CLUSTER_STATUS);
    expect(old.instance).toMatchObject({ version: '2.6.0-0-g47aa4e01e', synchro: null });
  });

  it('shows the native style, the instance name and why a replica is read-only', () => {
    const replica: InstanceState = { ...master, style: 'native', name: 's-1', ro: true, roReason: 'config', role: 'replica' };
    expect(statusDocument(identity, replica, NO_CLUSTER_STATUS).instance).toMatchObject({ style: 'native', name: 's-1', roReason: 'config' });
    expect(statusDocument(identity, master, NO_CLUSTER_STATUS).instance).toMatchObject({ style: 'lua', roReason: null });
  });
});

describe('an unsupported Tarantool', () => {
  const waiting: InstanceState = { phase: 'waiting', version: '1.10.15-0-g2b5f4e3', configured: false, pid: 7, attempt: 0, notes: {}, vclock: {}, replication: [], role: 'unconfigured' };

  it('is reported unsupported, so the coordinator never configures it', () => {
    expect(toTarantoolReport({ ...snap(waiting), offline: {} })).toMatchObject({ status: 'unsupported', alive: false, configured: false, vclock: null });
  });

  it('says so, with the fix, in /status', () => {
    const doc = statusDocument(identity, waiting, NO_CLUSTER_STATUS);
    expect(doc.instance.status).toBe('unsupported');
    expect(doc.instance.error).toMatch(/Tarantool 1\.10\.15-0-g2b5f4e3 is not supported.*tarantool\/tarantool:3/);
  });
});
