// Coordinator → agent commands: payload validation (tables of bad payloads) and the executor's
// mapping of every kind onto a fake LocalInstance, with its term and addressee checks.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CommandExecutor, supersededBy, type ExecutorInstance } from '../../agent/member/commands.js';
import { decodeInstanceCommand, encodeInstanceCommand, PayloadError, type InstanceCommand } from '../../agent/wire/command-payload.js';
import type { LocalSnapshot } from '../../agent/member/probe.js';
import type { InstanceState } from '../../agent/instance/state.js';
import type { CommandMessage, JsonObject } from '../../agent/wire/mesh-protocol.js';

const UUID0 = '11111111-1111-5111-8111-111111111111';
const UUID2 = '33333333-3333-5333-8333-333333333333';
const MASTER = { pod: 's-0', uuid: UUID0, address: '10.0.0.1:3301' };
const base = { replicaset: 's', pod: 's-1', reason: 'because', master: MASTER, timeoutMs: 5000 };
const repl = { replication: ['10.0.0.1:3301', '10.0.0.2:3301'], synchroQuorum: 2 };

const GOOD: InstanceCommand[] = [
  { ...base, kind: 'bootstrapMaster', ...repl },
  { ...base, kind: 'joinReplica', ...repl },
  { ...base, kind: 'reconfigure', ...repl },
  { ...base, kind: 'promote', ...repl },
  { ...base, kind: 'rebootstrap', ...repl },
  { ...base, kind: 'rejoinAsReplica', ...repl },
  { ...base, kind: 'restartReplication', ...repl },
  { ...base, kind: 'fence', master: null },
  { ...base, kind: 'waitCatchUp', source: 's-0', vclock: { '1': 10, '2': 3 } },
  { ...base, kind: 'expel', expelledPod: 's-2', expelledUuid: UUID2 },
  { ...base, kind: 'bootstrapBuckets', master: null },
];

describe('command payloads', () => {
  it.each(GOOD.map((c) => [c.kind, c] as const))('%s round-trips through encode/decode', (_kind, cmd) => {
    const { kind, payload } = encodeInstanceCommand(cmd);
    expect(decodeInstanceCommand(kind, payload)).toEqual(cmd);
  });

  const join = encodeInstanceCommand({ ...base, kind: 'joinReplica', ...repl }).payload;
  it.each([
    ['unknown kind', 'dropDatabase', join, 'unknown kind'],
    ['missing pod', 'joinReplica', { ...join, pod: undefined } as unknown as JsonObject, '"pod"'],
    ['pod not a name', 'joinReplica', { ...join, pod: 'S_1' }, '"pod"'],
    ['replicaset with a slash', 'joinReplica', { ...join, replicaset: 'a/b' }, '"replicaset"'],
    ['master not an object', 'joinReplica', { ...join, master: 'x' }, '"master"'],
    ['master address without port', 'joinReplica', { ...join, master: { ...MASTER, address: '10.0.0.1' } }, '"master.address"'],
    ['master uuid malformed', 'joinReplica', { ...join, master: { ...MASTER, uuid: 'nope' } }, '"master.uuid"'],
    ['credentials smuggled in a URI', 'joinReplica', { ...join, replication: ['u:p@10.0.0.1:3301'] }, '"replication"'],
    ['too many peers', 'joinReplica', { ...join, replication: Array.from({ length: 33 }, (_, i) => `10.0.0.${i}:3301`) }, '"replication"'],
    ['quorum zero', 'joinReplica', { ...join, synchroQuorum: 0 }, '"synchroQuorum"'],
    ['timeout negative', 'joinReplica', { ...join, timeoutMs: -1 }, '"timeoutMs"'],
    ['timeout fractional', 'joinReplica', { ...join, timeoutMs: 1.5 }, '"timeoutMs"'],
    ['vclock with a bad id', 'waitCatchUp', { ...join, source: 's-0', vclock: { '40': 1 } }, '"vclock"'],
    ['vclock negative', 'waitCatchUp', { ...join, source: 's-0', vclock: { '1': -1 } }, '"vclock"'],
    ['expel without uuid', 'expel', { ...join, expelledPod: 's-2' }, '"expelledUuid"'],
  ] as const)('refuses %s', (_name, kind, payload, problem) => {
    let err: unknown;
    try {
      decodeInstanceCommand(kind, payload as JsonObject);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PayloadError);
    expect(String((err as Error).message)).toContain(problem);
  });
});

function state(over: Partial<InstanceState> = {}): InstanceState {
  return { phase: 'configured', configured: true, pid: 42, attempt: 1, notes: {}, ro: true, status: 'running', vclock: { '1': 7 }, replication: [], role: 'replica', id: 2, ...over };
}

class FakeInstance implements ExecutorInstance {
  calls: Array<[string, unknown]> = [];
  current = state();
  gate: Promise<void> | null = null;
  private async call(name: string, arg: unknown): Promise<InstanceState> {
    this.calls.push([name, arg]);
    if (this.gate && name !== 'fence') await this.gate;
    return this.current;
  }
  state = async (): Promise<InstanceState> => this.current;
  bootstrap = (o: unknown) => this.call('bootstrap', strip(o));
  reconfigure = (o: unknown) => this.call('reconfigure', strip(o));
  fence = (o: unknown) => this.call('fence', strip(o));
  promote = (o: unknown) => this.call('promote', strip(o));
  waitForVclock = async (target: Record<string, number>, timeoutMs: number) => {
    this.calls.push(['waitForVclock', { target, timeoutMs }]);
    return { ...target };
  };
  rebootstrap = async (o: unknown) => {
    this.calls.push(['rebootstrap', strip(o)]);
    return { moved: [{ from: '/d', to: '/d/aside', files: 3 }], restartRequired: true };
  };
  expel = async (uuid: string) => {
    this.calls.push(['expel', uuid]);
    return { deleted: true, id: 3 };
  };
  bootstrapBuckets = async () => {
    this.calls.push(['bootstrapBuckets', null]);
    return { found: false };
  };
  findMasters = async () => {
    this.calls.push(['findMasters', null]);
  };
}

// Drop the bound (signal, timeoutMs) so expectations read as the mapping.
function strip(o: unknown): unknown {
  const { signal: _s, timeoutMs: _t, ...rest } = o as Record<string, unknown>;
  return rest;
}

const snapshot = (): LocalSnapshot => ({ at: 123, state: state(), error: null, offline: null });

function executor(inst: FakeInstance, knownTerm = 5) {
  return new CommandExecutor({ instance: inst, self: 's-1', logger: pino({ level: 'silent' }), knownTerm: () => knownTerm, refresh: async () => snapshot() });
}

function meshCommand(cmd: InstanceCommand, term = 5): CommandMessage {
  const { kind, payload } = encodeInstanceCommand(cmd);
  return { type: 'command', v: 1, id: `c-${Math.random()}`, term, from: 's-0', kind, payload };
}

const ctx = { signal: new AbortController().signal };
const follow = { uuid: UUID0, address: '10.0.0.1:3301', pod: 's-0' };
const peers = repl.replication;

describe('command executor mapping', () => {
  it.each([
    ['bootstrapMaster', { ...base, kind: 'bootstrapMaster', ...repl }, state({ phase: 'waiting', configured: false }), [['bootstrap', { role: 'master', peers, synchroQuorum: 2 }]]],
    ['joinReplica of an empty instance', { ...base, kind: 'joinReplica', ...repl }, state({ phase: 'waiting', configured: false }), [['bootstrap', { role: 'replica', master: follow, peers, synchroQuorum: 2 }]]],
    ['joinReplica of a configured instance', { ...base, kind: 'joinReplica', ...repl }, state(), [['reconfigure', { peers, synchroQuorum: 2, readOnly: true, master: follow }]]],
    ['joinReplica of the recorded master itself', { ...base, kind: 'joinReplica', master: { ...MASTER, pod: 's-1' }, ...repl }, state({ phase: 'waiting', configured: false }), [['bootstrap', { role: 'master', readOnly: true, peers, synchroQuorum: 2 }]]],
    ['reconfigure', { ...base, kind: 'reconfigure', ...repl }, state(), [['reconfigure', { peers, synchroQuorum: 2, master: follow }]]],
    ['reconfigure on the master', { ...base, kind: 'reconfigure', master: { ...MASTER, pod: 's-1' }, ...repl }, state(), [['reconfigure', { peers, synchroQuorum: 2, master: null }]]],
    ['reconfigure with no master known', { ...base, kind: 'reconfigure', master: null, ...repl }, state(), [['reconfigure', { peers, synchroQuorum: 2 }]]],
    ['rejoinAsReplica', { ...base, kind: 'rejoinAsReplica', ...repl }, state(), [['reconfigure', { peers, synchroQuorum: 2, readOnly: true, master: follow }]]],
    ['promote', { ...base, kind: 'promote', ...repl }, state(), [['reconfigure', { peers, master: null }], ['promote', { synchroQuorum: 2 }]]],
    ['fence', { ...base, kind: 'fence' }, state(), [['fence', {}]]],
    ['waitCatchUp', { ...base, kind: 'waitCatchUp', source: 's-0', vclock: { '1': 9 } }, state(), [['waitForVclock', { target: { '1': 9 }, timeoutMs: 5000 }]]],
    ['expel', { ...base, kind: 'expel', expelledPod: 's-2', expelledUuid: UUID2 }, state(), [['expel', UUID2]]],
    ['bootstrapBuckets', { ...base, kind: 'bootstrapBuckets', master: null }, state(), [['bootstrapBuckets', null]]],
    ['findMasters', { ...base, kind: 'findMasters', master: null }, state(), [['findMasters', null]]],
    ['restartReplication: emptied first, or box.cfg keeps the stopped applier', { ...base, kind: 'restartReplication', ...repl }, state({ ro: true }), [['reconfigure', { peers: [] }], ['reconfigure', { peers, synchroQuorum: 2, master: follow }]]],
    ['rebootstrap', { ...base, kind: 'rebootstrap', ...repl }, state(), [['rebootstrap', { role: 'replica', master: follow, peers, synchroQuorum: 2, reason: 'because' }]]],
  ] as Array<[string, InstanceCommand, InstanceState, Array<[string, unknown]>]>)('%s', async (_name, cmd, current, calls) => {
    const inst = new FakeInstance();
    inst.current = current;
    const ack = await executor(inst).handle(meshCommand(cmd), ctx);
    expect(ack.ok).toBe(true);
    expect(inst.calls).toEqual(calls);
    // The ack carries the state right after, for the coordinator's next round.
    expect(ack).toMatchObject({ result: { at: 123, tarantool: { configured: true, alive: true, vclock: { '1': 7 } } } });
  });

  it('refuses to restart the replication of a writable instance', async () => {
    const inst = new FakeInstance();
    inst.current = state({ ro: false });
    const ack = await executor(inst).handle(meshCommand({ ...base, kind: 'restartReplication', ...repl }), ctx);
    expect(ack.ok ? '' : ack.error).toContain('not a configured read-only replica');
    expect(inst.calls).toEqual([]);
  });

  it('refuses to join an empty replica without a master to join (it would start a history of its own)', async () => {
    const inst = new FakeInstance();
    inst.current = state({ phase: 'waiting', configured: false });
    const ack = await executor(inst).handle(meshCommand({ ...base, kind: 'joinReplica', master: null, ...repl }), ctx);
    expect(ack).toMatchObject({ ok: false });
    expect(ack.ok ? '' : ack.error).toContain('names no master');
    expect(inst.calls).toEqual([]);
  });

  it('refuses a command for another pod, an invalid payload, and an older term than one already seen', async () => {
    const inst = new FakeInstance();
    const ex = executor(inst, 5);
    expect(await ex.handle(meshCommand({ ...base, pod: 's-2', kind: 'fence' }), ctx)).toMatchObject({ ok: false, error: 'command for s-2 sent to s-1' });
    expect(await ex.handle({ ...meshCommand({ ...base, kind: 'fence' }), payload: { pod: 's-1' } }, ctx)).toMatchObject({ ok: false });
    expect(await ex.handle(meshCommand({ ...base, kind: 'fence' }, 4), ctx)).toMatchObject({ ok: false, error: 'refused: term 4 is older than term 5' });
    expect(await ex.handle(meshCommand({ ...base, kind: 'fence' }, 7), ctx)).toMatchObject({ ok: true });
    expect(await ex.handle(meshCommand({ ...base, kind: 'fence' }, 6), ctx)).toMatchObject({ ok: false, error: 'refused: term 6 is older than term 7' });
    expect(inst.calls.map(([n]) => n)).toEqual(['fence']);
  });

  it('runs operations one at a time, but a fence never waits behind them', async () => {
    const inst = new FakeInstance();
    let open: () => void = () => undefined;
    inst.gate = new Promise((r) => (open = r));
    const ex = executor(inst);
    const slow = ex.handle(meshCommand({ ...base, kind: 'reconfigure', ...repl }), ctx);
    const queued = ex.handle(meshCommand({ ...base, kind: 'rejoinAsReplica', ...repl }), ctx);
    await new Promise((r) => setImmediate(r)); // the first one is running (blocked in the instance)
    const fence = await ex.handle(meshCommand({ ...base, kind: 'fence' }), ctx);
    expect(fence.ok).toBe(true);
    expect(inst.calls.map(([n]) => n)).toEqual(['reconfigure', 'fence']);
    open();
    await Promise.all([slow, queued]);
    expect(inst.calls.map(([n]) => n)).toEqual(['reconfigure', 'fence', 'reconfigure']);
  });

  /** An executor whose instance blocks every call but fence until `open()`. */
  function gated() {
    const inst = new FakeInstance();
    let open: () => void = () => undefined;
    inst.gate = new Promise((r) => (open = r));
    return { inst, ex: executor(inst), open: () => open(), started: () => new Promise((r) => setImmediate(r)) };
  }

  it('a fence supersedes a queued promote of the same term: the promote never runs', async () => {
    const { inst, ex, open, started } = gated();
    const slow = ex.handle(meshCommand({ ...base, kind: 'rejoinAsReplica', ...repl }), ctx);
    const promote = ex.handle(meshCommand({ ...base, kind: 'promote', ...repl }), ctx);
    await started();
    expect((await ex.handle(meshCommand({ ...base, kind: 'fence' }), ctx)).ok).toBe(true);
    open();
    const [, p] = await Promise.all([slow, promote]);
    expect(p).toMatchObject({ ok: false, error: 'superseded: a fence arrived after this promote' });
    expect(inst.calls.map(([n]) => n)).toEqual(['reconfigure', 'fence']);
  });

  it('a fence that arrives while a promote is mid-way stops it before it makes the instance writable', async () => {
    const { inst, ex, open, started } = gated();
    const promote = ex.handle(meshCommand({ ...base, kind: 'promote', ...repl }), ctx);
    await started(); // in its first step (replication), blocked
    expect((await ex.handle(meshCommand({ ...base, kind: 'fence' }), ctx)).ok).toBe(true);
    open();
    expect(await promote).toMatchObject({ ok: false, error: 'superseded: a fence arrived after this promote' });
    expect(inst.calls.map(([n]) => n)).toEqual(['reconfigure', 'fence']);
  });

  it('a newer term supersedes queued commands of an older one; its own commands run', async () => {
    const { inst, ex, open, started } = gated();
    const slow = ex.handle(meshCommand({ ...base, kind: 'reconfigure', ...repl }, 5), ctx);
    const old = ex.handle(meshCommand({ ...base, kind: 'rejoinAsReplica', ...repl }, 5), ctx);
    await started();
    const fresh = ex.handle(meshCommand({ ...base, kind: 'rejoinAsReplica', ...repl }, 6), ctx);
    open();
    const [, o, f] = await Promise.all([slow, old, fresh]);
    expect(o).toMatchObject({ ok: false, error: 'superseded: term 6 began after this command of term 5' });
    expect(f.ok).toBe(true);
    expect(inst.calls.map(([n]) => n)).toEqual(['reconfigure', 'reconfigure']);
  });

  it.each([
    ['the same term, no fence since', { term: 5, newestTerm: 5, kind: 'promote', fencesAtStart: 1, fencesNow: 1 }, null],
    ['an older term', { term: 4, newestTerm: 5, kind: 'rejoinAsReplica', fencesAtStart: 0, fencesNow: 0 }, /term 5 began/],
    ['a fence of an older term is superseded too', { term: 4, newestTerm: 5, kind: 'fence', fencesAtStart: 1, fencesNow: 2 }, /term 5 began/],
    ['a promote after a fence', { term: 5, newestTerm: 5, kind: 'promote', fencesAtStart: 0, fencesNow: 1 }, /fence arrived after this promote/],
    ['a bootstrapMaster after a fence', { term: 5, newestTerm: 5, kind: 'bootstrapMaster', fencesAtStart: 0, fencesNow: 1 }, /fence arrived/],
    ['a read-only rejoin is not undone by a fence', { term: 5, newestTerm: 5, kind: 'rejoinAsReplica', fencesAtStart: 0, fencesNow: 1 }, null],
    ['a fence after a fence', { term: 5, newestTerm: 5, kind: 'fence', fencesAtStart: 1, fencesNow: 2 }, null],
  ] as const)('step guard: %s', (_what, o, expected) => {
    const why = supersededBy(o);
    if (expected === null) expect(why).toBeNull();
    else expect(why).toMatch(expected);
  });

  it('reports an instance failure as a refused ack with its message', async () => {
    const inst = new FakeInstance();
    inst.promote = async () => {
      throw new Error('promotion: clear_synchro_queue failed: timed out');
    };
    const ack = await executor(inst).handle(meshCommand({ ...base, kind: 'promote', ...repl }), ctx);
    expect(ack).toEqual({ ok: false, error: 'promotion: clear_synchro_queue failed: timed out' });
  });
});
