// The coordinator's batch runner with fakes: order, gates that stop the batch, the term fence on
// persist, the vclock a fence returned handed to the catch-up, and what commands carry.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { runBatch, toInstanceCommand, type ActionDeps } from '../../agent/coordinator/actions.js';
import { ControlMetrics } from '../../agent/coordinator/metrics.js';
import type { Action, PersistedState } from '../../agent/decide/model.js';
import type { CommandRequest } from '../../agent/mesh/mesh.js';
import type { Ack, JsonObject } from '../../agent/wire/mesh-protocol.js';
import { StaleTermError, type Snapshot } from '../../agent/state/store.js';
import { cluster, formed, persisted, T, uuidOf } from './decide-fixtures.js';

const { rs, state } = formed('s', 3, 0);
const observed = cluster(1000, rs);
const start: PersistedState = persisted(4, { s: state });

interface Sent {
  pod: string;
  req: CommandRequest;
}

function deps(over: Partial<ActionDeps> & { failKinds?: string[]; stale?: boolean } = {}) {
  const sent: Sent[] = [];
  const writes: Array<{ term: number | undefined; state: PersistedState }> = [];
  const terms: number[] = [];
  const d: ActionDeps = {
    store: {
      async update(mutator, opts) {
        if (over.stale) throw new StaleTermError(opts.term ?? 0, 9, 'other');
        const cur = { term: 4, coordinator: 'coordinator-0', state: start, updatedAt: '', resourceVersion: '1' } as Snapshot<PersistedState>;
        const next = mutator(cur) as PersistedState;
        writes.push({ term: opts.term, state: next });
        return { ...cur, term: next.term, state: next };
      },
    },
    async send(pod, req): Promise<Ack> {
      sent.push({ pod, req });
      if (over.failKinds?.includes(req.kind)) return { type: 'ack', v: 1, id: 'x', ok: false, error: `${req.kind} failed` };
      const detail: JsonObject = req.kind === 'fence' ? { vclock: { '1': 42 } } : {};
      return { type: 'ack', v: 1, id: 'x', ok: true, result: { at: 1, detail } };
    },
    deletePod: async () => 'deleted',
    event: () => undefined,
    acknowledged: () => undefined,
    termChanged: (t) => terms.push(t),
    metrics: new ControlMetrics(new Registry()),
    logger: pino({ level: 'silent' }),
    ...over,
  };
  return { d, sent, writes, terms };
}

const persist = (term: number, st: PersistedState = start): Action => ({ kind: 'persist', term, state: { ...st, term }, reason: 'r' });
const fence: Action = { kind: 'fence', term: 5, replicaset: 's', pod: 's-0', budgetMs: T.fenceBudgetMs, reason: 'switchover' };
const wait: Action = { kind: 'waitCatchUp', term: 5, replicaset: 's', pod: 's-1', source: 's-0', budgetMs: 5000, reason: 'catch up' };
const promote: Action = { kind: 'promote', term: 5, replicaset: 's', pod: 's-1', replication: ['a:1'], synchroQuorum: 2, budgetMs: T.promoteBudgetMs, reason: 'take over' };
const signal = new AbortController().signal;

describe('runBatch', () => {
  it('runs a switchover in order, fenced by the term, and hands the fenced vclock to the catch-up', async () => {
    const { d, sent, writes, terms } = deps();
    const out = await runBatch([persist(5), fence, wait, persist(5), promote], start, observed, d, signal);
    expect(out.stoppedAt).toBeNull();
    expect(sent.map((s) => `${s.req.kind}:${s.pod}:${s.req.term}`)).toEqual(['fence:s-0:5', 'waitCatchUp:s-1:5', 'promote:s-1:5']);
    expect(sent[1]?.req.payload).toMatchObject({ source: 's-0', vclock: { '1': 42 } });
    expect(writes.map((w) => w.term)).toEqual([4, 5]); // the first write is fenced by the old term, the second by the new
    expect(terms).toEqual([5]);
    expect(out.persisted.term).toBe(5);
  });

  it.each([
    ['a failed fence', 'fence', ['fence:s-0']],
    ['a catch-up that timed out', 'waitCatchUp', ['fence:s-0', 'waitCatchUp:s-1']],
  ])('stops at %s: nothing after the gate is sent', async (_name, kind, wantSent) => {
    const { d, sent, writes } = deps({ failKinds: [kind] });
    const out = await runBatch([persist(5), fence, wait, persist(5), promote], start, observed, d, signal);
    expect(out.stoppedAt?.kind).toBe(kind);
    expect(sent.map((s) => `${s.req.kind}:${s.pod}`)).toEqual(wantSent);
    expect(writes).toHaveLength(1);
  });

  it('goes on after a failed non-gate command', async () => {
    const { d, sent } = deps({ failKinds: ['reconfigure'] });
    const rc = (pod: string): Action => ({ kind: 'reconfigure', term: 4, replicaset: 's', pod, replication: ['a:1'], synchroQuorum: 2, budgetMs: T.commandBudgetMs, reason: 'r' });
    const out = await runBatch([rc('s-1'), rc('s-2')], start, observed, d, signal);
    expect(out.stoppedAt).toBeNull();
    expect(out.records.map((r) => r.ok)).toEqual([false, false]);
    expect(sent).toHaveLength(2);
  });

  it('stops everything when the state belongs to a newer term', async () => {
    const { d, sent } = deps({ stale: true });
    const out = await runBatch([persist(5), fence], start, observed, d, signal);
    expect(out.stale).toBeInstanceOf(StaleTermError);
    expect(sent).toEqual([]);
  });

  it('counts a rollout deletion only when it deleted something', async () => {
    const del = (pod: string): Action => ({ kind: 'deletePod', term: 5, replicaset: 's', pod, uid: `uid-${pod}`, reason: 'restarting replica' });
    const { d } = deps({ deletePod: async (pod) => (pod === 's-2' ? 'deleted' : 'gone') });
    await runBatch([del('s-2'), del('s-1')], start, observed, d, signal);
    const metric = await d.metrics.rolloutRestarts.get();
    expect(metric.values).toEqual([expect.objectContaining({ labels: { replicaset: 's' }, value: 1 })]);
  });
});

describe('toInstanceCommand', () => {
  it('names the persisted master with its uuid and address', () => {
    const c = toInstanceCommand({ kind: 'joinReplica', term: 4, replicaset: 's', pod: 's-2', replication: ['a:1'], synchroQuorum: 2, budgetMs: T.joinBudgetMs, reason: 'r' }, start, observed, new Map());
    expect(c.master).toEqual({ pod: 's-0', uuid: uuidOf('s-0'), address: 's-0.ip:3301' });
  });

  it('refuses a join when the master address is unknown, and a catch-up without a source vclock', () => {
    const noMaster = persisted(4, { s: { ...state, master: 's-9' } });
    expect(() => toInstanceCommand({ kind: 'joinReplica', term: 4, replicaset: 's', pod: 's-2', replication: [], synchroQuorum: 2, budgetMs: T.joinBudgetMs, reason: 'r' }, noMaster, observed, new Map())).toThrow('nobody to join');
    const blind = cluster(1000, { ...rs, instances: rs.instances.map((i) => (i.pod === 's-0' ? { ...i, tarantool: null } : i)) });
    expect(() => toInstanceCommand(wait, start, blind, new Map())).toThrow('vclock of s-0 is unknown');
  });
});
