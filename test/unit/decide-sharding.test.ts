// The coordinator's part of a sharded cluster (SPEC §4b), pure: routers configured on their own, and
// the buckets bootstrapped exactly once — when every storage replica set has a writable master that
// owns its queue and runs vshard, through one router that sees them all; recorded in the state.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ObservedCluster, ObservedReplicaSet, ObservedTarantool, PersistedState, PlannedAction } from '../../agent/decide/model.js';
import { reconcile } from '../../agent/decide/reconcile.js';
import { clusterRoles, planBucketBootstrap, planRouters, planRouterWakeups, replicaSetRole } from '../../agent/decide/sharding-plan.js';
import type { Step } from '../../agent/decide/step.js';
import type { ShardingState } from '../../agent/decide/sharding.js';
import { decodePersistedState } from '../../agent/wire/state-codec.js';
import { cluster, formed, fresh, instance, kinds, NOW, patch, persisted, T } from './decide-fixtures.js';

const RETRY = 2 * T.commandBudgetMs;
const BUCKETS = { active: 0, sending: 0, receiving: 0, garbage: 0, pinned: 0, total: 0 };

/** A formed storage replica set whose master owns its queue and runs vshard's storage. */
function storage(name: string, buckets = 0) {
  const f = formed(name, 3, 0);
  let rs: ObservedReplicaSet = { ...f.rs, shardingAnnotation: 'storage' };
  for (const i of rs.instances) {
    rs = patch(rs, i.pod, { tarantool: { shardingRoles: [], synchro: { owner: 1, term: 2, len: 0 }, vshard: { storage: { ...BUCKETS, active: buckets, total: buckets } } } });
  }
  return { rs, state: f.state };
}

/** A router replica set of `n` configured routers that see `masters`. */
function routers(n: number, masters: Record<string, string | null>, over: Partial<ObservedTarantool> = {}): ObservedReplicaSet {
  const instances = Array.from({ length: n }, (_, k) =>
    instance(`router-${k}`, {
      tarantool: { ro: false, shardingRoles: ['router'], upstreams: [], replication: [], synchroQuorum: 1, vshard: { router: { masters, unknown: 30, unreachable: 0, availableRw: 0 } }, ...over },
    }),
  );
  return { name: 'router', specReplicas: n, updateRevision: 'rev-1', failover: 'auto', paused: false, shardingAnnotation: 'router', instances };
}

const MASTERS = { a: 'a-0', b: 'b-0' };

function world(opts: { a?: ObservedReplicaSet; b?: ObservedReplicaSet; r?: ObservedReplicaSet; sharding?: ShardingState } = {}): { observed: ObservedCluster; state: PersistedState } {
  const a = storage('a');
  const b = storage('b');
  const observed = cluster(NOW, opts.a ?? a.rs, opts.b ?? b.rs, opts.r ?? routers(2, MASTERS));
  const state = { ...persisted(4, { a: a.state, b: b.state }), ...(opts.sharding ? { sharding: opts.sharding } : {}) };
  return { observed, state };
}

describe('replicaSetRole: from the instances\' configs, else the annotation', () => {
  it.each<[string, Array<string[] | undefined>, 'storage' | 'router' | null, 'storage' | 'router' | null]>([
    ['annotation only', [[], []], 'router', 'router'],
    ['config only', [['storage'], ['storage']], null, 'storage'],
    ['config over annotation', [['storage'], undefined], 'router', 'storage'],
    ['not reported yet: annotation', [undefined, undefined], 'storage', 'storage'],
    ['neither', [[], undefined], null, null],
  ])('%s', (_name, reported, annotation, want) => {
    const rs: ObservedReplicaSet = {
      name: 'x',
      specReplicas: reported.length,
      updateRevision: 'rev-1',
      failover: 'auto',
      paused: false,
      shardingAnnotation: annotation,
      instances: reported.map((roles, k) => instance(`x-${k}`, { tarantool: roles === undefined ? {} : { shardingRoles: roles } })),
    };
    expect(replicaSetRole(rs).role).toBe(want);
  });
});

describe('planRouters: routers hold no data and have no master', () => {
  it('configures each unconfigured router on its own, writable, replicating from nobody', () => {
    const r: ObservedReplicaSet = { ...routers(2, {}), instances: [fresh('router-0'), instance('router-1', { tarantool: { ro: false } })] };
    const step = planRouters(r, formed('router', 1).state);
    expect(step.commands).toEqual([expect.objectContaining({ kind: 'bootstrapMaster', pod: 'router-0', replication: ['router-0.ip:3301'], synchroQuorum: 1 })]);
    expect(step.commands[0]?.reason).toMatch(/holds no data/);
  });
  it('makes a read-only (self-fenced) router writable again, and leaves unreachable or surplus pods alone', () => {
    const r: ObservedReplicaSet = {
      ...routers(2, {}),
      instances: [instance('router-0', { tarantool: { ro: true } }), fresh('router-1', { agentReachable: false }), fresh('router-2')],
    };
    expect(kinds(planRouters(r, formed('router', 1).state).commands)).toEqual(['promote:router-0']);
  });
  it('reconcile gives routers no master and none of the replica-set planners', () => {
    const { observed, state } = world({ r: { ...routers(2, MASTERS), instances: [fresh('router-0'), fresh('router-1')] } });
    const r = reconcile(observed, state, T);
    expect(kinds(r.actions).filter((k) => k.includes('router'))).toEqual(['bootstrapMaster:router-0', 'bootstrapMaster:router-1']);
    expect(r.nextPersisted.replicasets['router']).toMatchObject({ master: null, members: [] });
    expect(r.nextPersisted.term).toBe(state.term);
  });
});

describe('planRouterWakeups: after a storage promotion, routers look for masters at once', () => {
  const promote = (rs: string, pod: string): PlannedAction => ({ kind: 'promote', replicaset: rs, pod, reason: 'failover', replication: [], synchroQuorum: 2 });
  const step = (commands: PlannedAction[], handover: PlannedAction[] = []): Step => ({
    state: formed('x', 3).state,
    commands,
    bumpTerm: true,
    reason: '',
    final: true,
    ...(handover.length > 0 ? { handover: { state: formed('x', 3).state, commands: handover } } : {}),
  });
  it.each<[string, Record<string, Step>, ObservedReplicaSet | undefined, string[]]>([
    ['a failover promotes a storage master: every router', { a: step([promote('a', 'a-1')]) }, undefined, ['findMasters:router-0', 'findMasters:router-1']],
    ['a switchover hands over: every router', { b: step([], [promote('b', 'b-2')]) }, undefined, ['findMasters:router-0', 'findMasters:router-1']],
    ['no promotion: nobody', { a: step([]), b: step([]) }, undefined, []],
    ['a router made writable again is no storage promotion', { router: step([promote('router', 'router-0')]) }, undefined, []],
    [
      'only routers that run vshard and answer',
      { a: step([promote('a', 'a-1')]) },
      patch(patch(routers(3, MASTERS), 'router-1', { agentReachable: false }), 'router-2', { tarantool: { vshard: {} } }),
      ['findMasters:router-0'],
    ],
  ])('%s', (_name, steps, r, want) => {
    const { observed } = world(r ? { r } : {});
    const wakeups = planRouterWakeups(observed, clusterRoles(observed), steps);
    expect(kinds(wakeups)).toEqual(want);
    for (const w of wakeups) expect(w.reason).toMatch(/promoted .* looks for masters now/);
  });
});

describe('planBucketBootstrap', () => {
  const roles = (o: ObservedCluster) => clusterRoles(o);
  const plan = (w: { observed: ObservedCluster; state: PersistedState }) => planBucketBootstrap(w.observed, w.state, roles(w.observed), RETRY);
  const notMaster = (name: string, over: Partial<ObservedTarantool>) => patch(storage(name).rs, `${name}-0`, { tarantool: over });

  it.each<[string, Parameters<typeof world>[0], RegExp]>([
    ['a storage without a writable master', { a: notMaster('a', { ro: true }) }, /a's master a-0 is not writable/],
    ['a master that does not own its queue', { b: notMaster('b', { synchro: { owner: 0, term: 1, len: 0 } }) }, /b's master b-0 does not own the synchronous queue/],
    ['a master without vshard yet', { a: notMaster('a', { vshard: null }) }, /a's master a-0 does not run vshard's storage/],
    ['routers that do not see every master', { r: routers(2, { a: 'a-0', b: null }) }, /no router runs vshard and sees the master of every storage/],
    ['no router replica set', { r: { ...routers(0, {}), shardingAnnotation: null } }, /no router replica set yet/],
  ])('waits: %s', (_name, opts, reason) => {
    const p = plan(world(opts));
    expect(p.commands).toEqual([]);
    expect(p.reason).toMatch(reason);
  });

  it('asks one router, the first by name that sees every master, and records the request first', () => {
    const w = world();
    const r = reconcile(w.observed, w.state, T);
    const persist = r.actions.find((a) => a.kind === 'persist');
    expect(persist && persist.kind === 'persist' ? persist.state.sharding : undefined).toEqual({ bootstrap: { state: 'requested', how: null, by: 'router-0', atMs: NOW } });
    expect(r.actions.map((a) => a.kind)).toEqual(['persist', 'event', 'bootstrapBuckets']);
    expect(r.actions[2]).toMatchObject({ pod: 'router-0', replicaset: 'router', term: w.state.term, budgetMs: T.commandBudgetMs });
    expect(r.reason).toMatch(/asking router router-0 to bootstrap the buckets/);
  });

  it('does not repeat a request within the retry period, and repeats it after', () => {
    const requested: ShardingState = { bootstrap: { state: 'requested', how: null, by: 'router-1', atMs: NOW - 1000 } };
    expect(plan(world({ sharding: requested })).commands).toEqual([]);
    const old: ShardingState = { bootstrap: { state: 'requested', how: null, by: 'router-1', atMs: NOW - RETRY } };
    expect(kinds(plan(world({ sharding: old })).commands)).toEqual(['bootstrapBuckets:router-0']);
  });

  it.each<[string, ShardingState | undefined, 'bootstrapped' | 'found', string]>([
    ['buckets after its own request: bootstrapped', { bootstrap: { state: 'requested', how: null, by: 'router-1', atMs: NOW - 5 } }, 'bootstrapped', 'router-1'],
    ['buckets nobody recorded (lost state, by hand): found, never repeated', undefined, 'found', 'a-0'],
  ])('%s', (_name, sharding, how, by) => {
    const w = world({ a: storage('a', 15).rs, ...(sharding ? { sharding } : {}) });
    const p = plan(w);
    expect(p.commands).toEqual([]);
    expect(p.next).toEqual({ bootstrap: { state: 'done', how, by, atMs: NOW } });
    // Recorded once; the next round with the record has nothing to do.
    const after = plan({ observed: w.observed, state: { ...w.state, sharding: p.next! } });
    expect(after).toMatchObject({ commands: [], next: p.next });
  });

  it('plain replica sets (no roles) plan nothing and record nothing', () => {
    const f = formed('s');
    const p = planBucketBootstrap(cluster(NOW, f.rs), persisted(1, { s: f.state }), { s: null }, RETRY);
    expect(p).toEqual({ next: undefined, commands: [], reason: '' });
    expect(reconcile(cluster(NOW, f.rs), persisted(1, { s: f.state }), T).actions).toEqual([]);
  });

  it('the record survives the state ConfigMap round trip (a new coordinator reads it)', () => {
    const s = { ...persisted(3, {}), sharding: { bootstrap: { state: 'done' as const, how: 'found' as const, by: 'a-0', atMs: 5 } } };
    expect(decodePersistedState(JSON.parse(JSON.stringify(s)))).toEqual(s);
    expect(decodePersistedState(persisted(3, {}))).not.toHaveProperty('sharding');
    expect(() => decodePersistedState({ ...s, sharding: { bootstrap: { state: 'done', how: null, by: 'a-0', atMs: 5 } } })).toThrow(/how a done bootstrap happened/);
  });
});

// A toy world around the real reconcile: storages whose masters come and go, routers that come and
// go, coordinators that change (a batch cut after any action, the state kept only as persisted), and
// vshard's own rule (bootstrap of a non-empty cluster is refused). Buckets must be created exactly
// once, never asked for while a storage master is not ready, and be recorded once everything is up.
describe('property: the buckets are bootstrapped exactly once, whatever the coordinators and faults', () => {
  type Ev = { t: 'tick'; ms: number } | { t: 'masterReady'; rs: 'a' | 'b'; ready: boolean } | { t: 'routerUp'; k: 0 | 1; up: boolean } | { t: 'newCoordinator'; cutAt: number | null };
  const ev: fc.Arbitrary<Ev> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.constantFrom(300, 5_000, 40_000) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('masterReady' as const), rs: fc.constantFrom('a' as const, 'b' as const), ready: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('routerUp' as const), k: fc.constantFrom(0 as const, 1 as const), up: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('newCoordinator' as const), cutAt: fc.option(fc.nat({ max: 3 }), { nil: null }) }) },
  );

  it('holds over random histories', () => {
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 40 }), (events) => {
        let now = NOW;
        const ready = { a: true, b: true };
        const up = [true, true];
        let created = 0;
        let holder: 'a' | 'b' | null = null;
        let state: PersistedState = world().state;
        let cut: number | null = null;
        const observe = (): ObservedCluster => {
          const st = (name: 'a' | 'b') => {
            const n = holder === name ? 15 : holder !== null ? 15 : 0;
            const rs = storage(name, n).rs;
            return ready[name] ? rs : patch(rs, `${name}-0`, { tarantool: { ro: true } });
          };
          const r = routers(2, MASTERS);
          const rr = { ...r, instances: r.instances.map((i, k) => (up[k] ? i : { ...i, agentReachable: false })) };
          return { ...cluster(now, st('a'), st('b'), rr), now };
        };
        const round = (): void => {
          const observed = observe();
          const r = reconcile(observed, state, T);
          let n = 0;
          for (const a of r.actions) {
            if (cut !== null && n++ >= cut) break;
            if (a.kind === 'persist') state = a.state;
            if (a.kind === 'bootstrapBuckets') {
              expect(ready.a && ready.b, 'asked while a storage master was not ready').toBe(true);
              expect(holder, 'asked although a storage already holds buckets').toBeNull();
              if (holder === null) {
                created += 1;
                holder = 'a';
              }
            }
          }
          cut = null;
        };
        for (const e of events) {
          if (e.t === 'tick') now += e.ms;
          else if (e.t === 'masterReady') ready[e.rs] = e.ready;
          else if (e.t === 'routerUp') up[e.k] = e.up;
          else cut = e.cutAt;
          round();
        }
        // Faults over: everything up, time passes.
        ready.a = ready.b = true;
        up[0] = up[1] = true;
        for (let k = 0; k < 4; k++) {
          now += RETRY;
          round();
        }
        expect(created).toBe(1);
        expect(state.sharding?.bootstrap?.state).toBe('done');
        const recorded: PlannedAction[] = reconcile(observe(), state, T).actions.filter((a) => a.kind === 'bootstrapBuckets');
        expect(recorded).toEqual([]);
      }),
      { numRuns: Number(process.env['SHOAL_PROPERTY_RUNS'] ?? 100) },
    );
  });
});
