import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Handover, type HandoverOptions } from '../../agent/member/handover.js';
import type { SwitchoverRequest } from '../../agent/decide/switchover.js';
import { prestopVerdict, type PodReading } from '../../agent/member/prestop-gate.js';

// SIGTERM before /prestop (container mode: the kubelet signals the agent and runs Tarantool's
// preStop hook at once): a master's agent hands over before it stops; a replica's stops at once.
/** The gate as the agent wires it, over a pod the API server shows `pod` (no watch). */
const gate = (pod: PodReading): HandoverOptions['termination'] => async (sigterm) =>
  prestopVerdict({ sigterm: sigterm(), watched: null, selfUid: null, read: pod });

function handover(master: boolean, over: Partial<HandoverOptions> = {}): { h: Handover; asked: SwitchoverRequest[]; setPublished: (p: string) => void } {
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
    forward: async () => {
      throw new Error('no forwarding in this test');
    },
    termination: gate({ found: true, uid: 'u', deleting: true }),
    writable: async () => writable,
    publishedMaster: () => published ?? (writable ? 's-0' : 's-1'),
    logger: pino({ level: 'silent' }),
    ...over,
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

describe('Handover.prestopHook (GET /prestop)', () => {
  const signal = (): AbortSignal => new AbortController().signal;

  it('on a running master answers 409 with the reason and asks for nothing', async () => {
    const { h, asked } = handover(true, { termination: gate({ found: true, uid: 'u', deleting: false }) });
    const r = await h.prestopHook(5_000, signal());
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ handedOver: false, refused: true, reason: expect.stringContaining('not terminating') });
    expect(asked).toEqual([]);
  });

  it('answers 503 and moves nothing when it cannot tell', async () => {
    const { h, asked } = handover(true, { termination: gate({ error: 'connect ECONNREFUSED' }) });
    const r = await h.prestopHook(5_000, signal());
    expect(r.status).toBe(503);
    expect(asked).toEqual([]);
  });

  it('hands a terminating master over', async () => {
    const { h, asked } = handover(true);
    const r = await h.prestopHook(5_000, signal());
    expect(r).toMatchObject({ status: 200, body: { wasMaster: true, handedOver: true } });
    expect(asked).toHaveLength(1);
  });

  it('acts on a running pod once the agent received SIGTERM', async () => {
    const { h, asked } = handover(true, { termination: gate({ found: true, uid: 'u', deleting: false }) });
    const stopping = h.beforeStop(5_000);
    const r = await h.prestopHook(5_000, signal());
    await stopping;
    expect(r.status).toBe(200);
    expect(asked).toHaveLength(1);
  });

  it('on a master that does not coordinate: asks nobody, waits for the coordinator to hand over', async () => {
    let writable = true;
    const forwarded: unknown[] = [];
    const { h } = handover(true, {
      localCoordinator: () => null,
      leader: () => 's-2',
      writable: async () => writable,
      publishedMaster: () => (writable ? 's-0' : 's-1'),
      forward: async (...args: unknown[]) => {
        forwarded.push(args);
        throw new Error('must not be called');
      },
    });
    setTimeout(() => (writable = false), 300); // the coordinator saw the deletion and handed over
    const r = await h.prestopHook(5_000, signal());
    expect(r).toMatchObject({ status: 200, body: { wasMaster: true, handedOver: true } });
    expect(forwarded).toEqual([]);
  });
});

describe('Handover.switchover', () => {
  it('forwards the caller\'s own Authorization header to the coordinator, and nothing of its own', async () => {
    const sent: Array<{ pod: string; path: string; headers: Record<string, string> }> = [];
    const { h } = handover(false, {
      localCoordinator: () => null,
      leader: () => 's-2',
      forward: async (pod, r) => {
        sent.push({ pod, path: r.path, headers: r.headers });
        return { status: 200, body: { ok: true, from: 's-0', to: 's-1', reason: 'switched' } };
      },
    });
    const r = await h.switchover({ replicaset: 's', to: 's-1' }, { authorization: 'Bearer caller-token', forwardedBy: null }, new AbortController().signal);
    expect(r).toMatchObject({ status: 200, body: { ok: true, coordinator: 's-2' } });
    expect(sent).toEqual([{ pod: 's-2', path: '/switchover', headers: { authorization: 'Bearer caller-token', 'content-type': 'application/json', 'x-shoal-forwarded-by': 's-0' } }]);
  });

  it('does not forward a forwarded request again', async () => {
    const { h } = handover(false, { localCoordinator: () => null, leader: () => 's-2' });
    const r = await h.switchover({ replicaset: 's' }, { authorization: 'Bearer x', forwardedBy: 's-1' }, new AbortController().signal);
    expect(r.status).toBe(503);
  });
});
