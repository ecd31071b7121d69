import { describe, expect, it } from 'vitest';
import { lagOf, readinessOf, roleOf } from '../../agent/instance/readiness.js';
import type { InstanceState, PeerState } from '../../agent/instance/state.js';

const MASTER = 'aaaaaaaa-0000-5000-8000-000000000001';
const SELF = 'aaaaaaaa-0000-5000-8000-000000000002';

function st(over: Partial<InstanceState>): InstanceState {
  return { phase: 'configured', configured: true, pid: 1, attempt: 1, notes: {}, vclock: {}, replication: [], role: 'replica', uuid: SELF, status: 'running', ro: true, ...over };
}
const peer = (uuid: string, status: string, lag = 0.01): PeerState => ({ id: 1, uuid, upstream: { status, lag } });

describe('readiness', () => {
  it('derives the role', () => {
    expect(roleOf(st({ configured: false }))).toBe('unconfigured');
    expect(roleOf(st({ ro: false }))).toBe('master');
    expect(roleOf(st({ ro: true }))).toBe('replica');
    expect(roleOf(st({ ro: true, notes: { fenced: true } }))).toBe('fenced');
  });

  it('a master is ready once running; an unconfigured or orphan instance is not', () => {
    expect(readinessOf(st({ ro: false })).ready).toBe(true);
    expect(readinessOf(st({ configured: false, phase: 'waiting' }))).toEqual({ ready: false, reason: 'not configured (waiting)' });
    expect(readinessOf(st({ status: 'orphan' })).ready).toBe(false);
  });

  it('a replica is ready only while its master upstream follows', () => {
    const notes = { masterUuid: MASTER };
    expect(readinessOf(st({ notes, replication: [peer(MASTER, 'follow')] })).ready).toBe(true);
    expect(readinessOf(st({ notes, replication: [peer(MASTER, 'disconnected')] })).ready).toBe(false);
    // Following someone else is not following the master.
    expect(readinessOf(st({ notes, replication: [peer('other', 'follow')] })).ready).toBe(false);
    // Master unknown (agent restarted): any following upstream will do.
    expect(readinessOf(st({ replication: [peer('other', 'follow')] })).ready).toBe(true);
    expect(readinessOf(st({ replication: [] })).ready).toBe(false);
  });

  it('a fenced instance is out of service even while it follows a peer', () => {
    expect(readinessOf(st({ notes: { fenced: true }, replication: [peer('other', 'follow')] }))).toEqual({
      ready: false,
      reason: 'fenced (read-only, waiting for the coordinator)',
    });
  });

  it('lag is 0 on a master and the master upstream lag on a replica', () => {
    expect(lagOf(st({ ro: false }))).toBe(0);
    expect(lagOf(st({ notes: { masterUuid: MASTER }, replication: [peer(MASTER, 'follow', 0.2), peer('x', 'follow', 5)] }))).toBe(0.2);
    expect(lagOf(st({ replication: [] }))).toBeUndefined();
    expect(lagOf(st({ configured: false }))).toBeUndefined();
  });
});
