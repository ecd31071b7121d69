import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PODS, Sim, type SimEvent } from './decide-sim.js';

// Random histories of pod creations, deletions, restarts, scale changes, master deaths, partitions,
// template changes, pauses, switchover requests, coordinator crashes (mid-batch too) and replicas
// whose replication stops with an error (healed by a restart, or only by a rebootstrap), run
// against the toy world. The world checks after every action and step:
//   - never two writable instances; the persisted master is a member (at most one per replica set);
//   - every action carries the round's term; terms never go back; no agent ever sees an old term;
//   - a pod is expelled only when it is gone and its ordinal >= spec.replicas; never the master;
//   - a promoted replica is never behind a live, reachable member and has every acknowledged write;
//   - the rollout never deletes the master and never deletes while another member is down;
//   - a replication repair (restart, rebootstrap) never targets the master or a writable instance.

const pod = fc.nat({ max: MAX_PODS - 1 });
const event: fc.Arbitrary<SimEvent> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.constantFrom(200, 500, 1000, 2500, 5000) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('write' as const), sync: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('killTarantool' as const), pod, downForMs: fc.constantFrom(0, 1000, 6000, 20_000) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('deletePod' as const), pod }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('isolate' as const), pod }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('masterFault' as const),
      fault: fc.constantFrom('isolate' as const, 'kill' as const, 'delete' as const),
      downForMs: fc.constantFrom(0, 6000, 20_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('heal' as const), pod }) },
  { weight: 2, arbitrary: fc.constant({ t: 'healAll' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('scale' as const), replicas: fc.integer({ min: 1, max: MAX_PODS }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'template' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rollback' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pause' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('failoverMode' as const), mode: fc.constantFrom('auto' as const, 'manual' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('switchover' as const), to: fc.option(pod, { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('newCoordinator' as const), cutBatchAt: fc.option(fc.nat({ max: 6 }), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('stopApplier' as const), pod, heals: fc.constantFrom('restart' as const, 'rebootstrap' as const) }) },
);

/** Only failures and writes: the histories where an acknowledged write could be lost are denser. */
const failure: fc.Arbitrary<SimEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.constantFrom(500, 2500, 5000) }) },
  { weight: 6, arbitrary: fc.constant({ t: 'write' as const, sync: true }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('isolate' as const), pod }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('heal' as const), pod }) },
  { weight: 1, arbitrary: fc.constant({ t: 'healAll' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('killTarantool' as const), pod, downForMs: fc.constantFrom(1000, 20_000) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('masterFault' as const), fault: fc.constantFrom('isolate' as const, 'kill' as const), downForMs: fc.constant(20_000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('scale' as const), replicas: fc.integer({ min: 2, max: MAX_PODS }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('stopApplier' as const), pod, heals: fc.constant('rebootstrap' as const) }) },
);

/** A formed 3-instance replica set first, then the random history. */
const warmUp: SimEvent[] = Array.from({ length: 8 }, () => ({ t: 'tick', ms: 1000 }) as const);
const history = fc.array(event, { minLength: 5, maxLength: 70 });
/** SHOAL_PROPERTY_RUNS=5000 for a deeper search than the default run. */
const RUNS = Number(process.env.SHOAL_PROPERTY_RUNS ?? 300);
const TIMEOUT_MS = Math.max(20_000, RUNS * 20);

describe('coordinator properties over random histories', () => {
  it('keeps every safety invariant', async () => {
    const seen = { promotions: 0, rebootstraps: 0, expels: 0, deletes: 0, switchovers: 0, writesAcked: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(history, async (events) => {
        const sim = new Sim();
        await sim.run([...warmUp, ...events]);
        for (const key of Object.keys(seen) as Array<keyof typeof seen>) seen[key] += sim.stats[key];
      }),
      { numRuns: RUNS },
    );
    // The histories must actually exercise what the invariants guard.
    for (const key of ['promotions', 'expels', 'deletes', 'switchovers', 'writesAcked'] as const) expect(seen[key]).toBeGreaterThan(0);
  }, TIMEOUT_MS);

  it('never loses an acknowledged write nor has two writers under partitions and kills', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(failure, { minLength: 5, maxLength: 50 }), async (events) => {
        await new Sim().run([...warmUp, ...events]);
      }),
      { numRuns: RUNS * 3 },
    );
  }, TIMEOUT_MS);

  it('converges once the faults stop: one writable master, every pod a caught-up member on the update revision', async () => {
    await fc.assert(
      fc.asyncProperty(history, async (events) => {
        const sim = new Sim();
        await sim.run([...warmUp, ...events]);
        sim.healAll();
        const settle = async () => {
          // Long enough for a lost rebootstrap to be re-requested (rebootstrapRetryMs).
          for (let i = 0; i < 90 && sim.settled() !== null; i++) await sim.run([{ t: 'tick', ms: 1000 }, { t: 'write', sync: true }]);
        };
        await settle();
        // By design the coordinator refuses to promote while too few members answer to be sure no
        // acknowledged write is missed (e.g. a scale-down took the master's pod and a replica with it).
        // The operator's remedy is to scale back up: the pods return with their volumes.
        if (sim.settled() !== null && /needed to be sure no acknowledged write is missed/.test(sim.coordinatorReason())) {
          await sim.run([{ t: 'scale', replicas: MAX_PODS }]);
          await settle();
        }
        const problem = sim.settled();
        if (problem !== null) throw new Error(`not settled: ${problem}\n${sim.trace.join('\n')}`);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  }, TIMEOUT_MS);

  it('fences a cut-off master before promoting another, and rebootstraps it when it had unreplicated writes', async () => {
    const sim = new Sim();
    await sim.run(warmUp);
    await sim.run([{ t: 'write', sync: true }, { t: 'masterFault', fault: 'isolate', downForMs: 0 }, { t: 'write', sync: false }, { t: 'write', sync: true }]);
    expect(sim.stats.writesAcked).toBe(1); // the cut-off master cannot collect a quorum
    for (let i = 0; i < 14; i++) await sim.run([{ t: 'tick', ms: 500 }]); // past the 5 s failover timeout
    expect(sim.stats.promotions).toBe(1);
    await sim.run([{ t: 'healAll' }]);
    for (let i = 0; i < 10 && sim.settled() !== null; i++) await sim.run([{ t: 'tick', ms: 1000 }]);
    expect(sim.settled()).toBeNull();
    expect(sim.stats.rebootstraps).toBe(1);
    expect(sim.pods[0]?.keptAside).toBe(1);
    expect(sim.trace.join('\n')).toMatch(/db-0 self-fences[\s\S]*promote db-1/);
  });

  it('repairs a replica whose replication stopped: a restart first, a rebootstrap when that does not heal it', async () => {
    const sim = new Sim();
    await sim.run(warmUp);
    await sim.run([{ t: 'stopApplier', pod: 1, heals: 'restart' }, { t: 'tick', ms: 500 }]);
    expect(sim.trace.join('\n')).toMatch(/done restartReplication db-1 .*db-1 stopped: Invalid MsgPack/);
    expect(sim.settled()).toBeNull();
    await sim.run([{ t: 'write', sync: true }, { t: 'stopApplier', pod: 2, heals: 'rebootstrap' }]);
    for (let i = 0; i < 12; i++) await sim.run([{ t: 'tick', ms: 500 }, { t: 'write', sync: true }]);
    expect(sim.stats.rebootstraps).toBe(1);
    expect(sim.pods[2]?.keptAside).toBe(1);
    expect(sim.stats.promotions).toBe(0);
    for (let i = 0; i < 12; i++) await sim.run([{ t: 'tick', ms: 500 }]);
    expect(sim.settled()).toBeNull();
    expect(sim.state.replicasets.db?.repairs).toEqual([]);
  });

  it('does not promote the only answering replica when the acknowledged writes may be on the silent one', async () => {
    const sim = new Sim();
    await sim.run(warmUp);
    // db-2 misses a write that db-0 and db-1 acknowledge; then db-1 is cut off and db-0 dies.
    await sim.run([{ t: 'isolate', pod: 2 }, { t: 'write', sync: true }, { t: 'isolate', pod: 1 }, { t: 'heal', pod: 2 }]);
    await sim.run([{ t: 'killTarantool', pod: 0, downForMs: 60_000 }]);
    for (let i = 0; i < 10; i++) await sim.run([{ t: 'tick', ms: 1000 }]);
    expect(sim.stats.writesAcked).toBe(1);
    expect(sim.stats.promotions).toBe(0);
    expect(sim.coordinatorReason()).toMatch(/only 1 of 3 members answer, 2 needed to be sure no acknowledged write is missed/);
    // db-1 comes back: it has the write, and is promoted.
    await sim.run([{ t: 'heal', pod: 1 }, { t: 'tick', ms: 1000 }]);
    expect(sim.state.replicasets.db?.master).toBe('db-1');
  });

  it('forms a replica set, survives a master kill and rolls a template change with writes acknowledged', async () => {
    const sim = new Sim();
    await sim.run(warmUp);
    expect(sim.settled()).toBeNull();
    await sim.run([{ t: 'write', sync: true }, { t: 'killTarantool', pod: 0, downForMs: 20_000 }]);
    for (let i = 0; i < 8; i++) await sim.run([{ t: 'tick', ms: 1000 }, { t: 'write', sync: true }]);
    expect(sim.stats.promotions).toBe(1);
    expect(sim.state.replicasets.db?.master).not.toBe('db-0');
    await sim.run([{ t: 'template' }]);
    for (let i = 0; i < 40 && sim.settled() !== null; i++) await sim.run([{ t: 'tick', ms: 1000 }, { t: 'write', sync: true }]);
    expect(sim.settled()).toBeNull();
    expect(sim.stats.deletes).toBe(3);
    expect(sim.stats.writesAcked).toBeGreaterThan(5);
  });
});
