import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Handover } from '../../agent/member/handover.js';
import type { SwitchoverRequest } from '../../agent/decide/switchover.js';

// SIGTERM before /prestop (container mode: the kubelet signals the agent and runs Tarantool's
// preStop hook at once): a master's agent hands over before it stops; a replica's stops at once.
function handover(master: boolean): { h: Handover; asked: SwitchoverRequest[]; setPublished: (p: string) => void } {
  const asked: SwitchoverRequest[] = [];
  let writable = master;
  let published: string | null = null;
  const h = new Handover({
    self: 's-0',
    replicaset: 's',
    localCoordinator: () => ({
      requestSwitchover: async (r: SwitchoverRequest) => {
        asked.push(r);
        await new Promise((resolve) => setTimeout(resolve, 20));
        writable = false; // the coordinator fenced s-0 and promoted s-1
        return { ok: true, from: 's-0', to: 's-1', reason: 'switched' };
      },
    }),
    leader: () => 's-0',
    agentAddress: () => null,
    token: () => 't',
    writable: async () => writable,
    publishedMaster: () => published ?? (writable ? 's-0' : 's-1'),
    logger: pino({ level: 'silent' }),
  });
  return { h, asked, setPublished: (p) => (published = p) };
}

describe('Handover.beforeStop', () => {
  it('hands a master over when SIGTERM comes before /prestop', async () => {
    const { h, asked } = handover(true);
    await h.beforeStop(5_000);
    expect(asked).toEqual([{ replicaset: 's', from: 's-0', requestedBy: '/prestop of s-0' }]);
  });

  it('joins a running /prestop instead of asking for a second switchover', async () => {
    const { h, asked } = handover(true);
    const hook = h.prestop(5_000, new AbortController().signal);
    await h.beforeStop(5_000);
    expect((await hook).status).toBe(200);
    expect(asked).toHaveLength(1);
  });

  it('asks once: an answered switchover is the hand-over, even before the new view arrives', async () => {
    const { h, asked, setPublished } = handover(true);
    setPublished('s-0'); // the published view still names s-0 when the answer comes
    expect((await h.prestop(5_000, new AbortController().signal)).body).toMatchObject({ handedOver: true });
    expect(asked).toHaveLength(1);
  });

  it('stops a replica without asking anything', async () => {
    const { h, asked } = handover(false);
    await h.beforeStop(5_000);
    expect(asked).toEqual([]);
  });
});
