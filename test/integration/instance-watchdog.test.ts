// The Tarantool watchdog is a lease only the self-fencer renews (issue 14, hole 1). Reads — status()
// from /status, /readyz, /metrics or the probe — must not keep a master writable: before this, any
// status() call fed the watchdog, so a master whose agent was alive but cut off from the mesh never
// fenced itself while the majority failed it over. On a real Tarantool of each lane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TARANTOOL_LANES } from '../../demo/tarantool-binaries.js';
import type { InstanceState } from '../../agent/instance/state.js';
import { TarantoolFleet, type Node } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

const LEASE_S = 0.6;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(TARANTOOL_LANES)('the watchdog lease (Tarantool %s)', (lane) => {
  const fleet = new TarantoolFleet();
  let m: Node;

  beforeAll(async () => {
    m = await fleet.node('storage-0', { lane });
    await m.inst.bootstrap({ role: 'master', timeoutMs: 60_000 });
  });
  afterAll(() => fleet.cleanup());

  // Renewed first: an instance whose lease ran out is fenced again within 50 ms of being made writable.
  /** Polls status() every `everyMs` (as a busy /status, /metrics and the probe would) until read-only, at most 5 s. */
  async function readOnlyAfter(everyMs: number): Promise<InstanceState> {
    const started = Date.now();
    let s = await m.inst.state();
    while (s.ro === false && Date.now() - started < 5_000) {
      await pause(everyMs);
      s = await m.inst.state();
    }
    return s;
  }

  async function writableMaster(): Promise<void> {
    await m.inst.renewWatchdog();
    await m.inst.unfence({ timeoutMs: 10_000 });
    expect((await m.inst.state()).ro).toBe(false);
  }

  it('reads alone do not keep a master writable: it goes read-only when the lease runs out', async () => {
    await m.inst.armWatchdog(LEASE_S);
    await writableMaster();
    await m.inst.renewWatchdog();
    const started = Date.now();
    const s = await readOnlyAfter(50);
    expect(s.ro).toBe(true);
    expect(s.notes['fenced']).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(LEASE_S * 1000 - 100);
  });

  it('renewals keep it writable; when they stop it fences itself within one lease', async () => {
    await writableMaster();
    const renewing = Date.now();
    while (Date.now() - renewing < 3 * LEASE_S * 1000) {
      expect(await m.inst.renewWatchdog()).toBe(LEASE_S);
      await pause(100);
    }
    expect((await m.inst.state()).ro).toBe(false);
    const stopped = Date.now();
    expect((await readOnlyAfter(50)).ro).toBe(true);
    expect(Date.now() - stopped).toBeLessThan(LEASE_S * 1000 + 1_000);
  });

  it('arming again (a restarted agent) changes the length but never extends the lease', async () => {
    await writableMaster();
    await m.inst.renewWatchdog();
    const renewed = Date.now();
    await pause(LEASE_S * 500);
    await m.inst.armWatchdog(LEASE_S); // the new agent arms; it has not earned a renewal yet
    expect((await readOnlyAfter(20)).ro).toBe(true);
    // Fenced one lease after the last renewal, not one lease after the re-arming.
    expect(Date.now() - renewed).toBeLessThan(LEASE_S * 1000 + LEASE_S * 400);
  });

  it('disarmed, nothing fences and nothing renews', async () => {
    await m.inst.armWatchdog(null);
    await writableMaster();
    expect(await m.inst.renewWatchdog()).toBeNull();
    await pause(LEASE_S * 2000);
    expect((await m.inst.state()).ro).toBe(false);
  });
});
