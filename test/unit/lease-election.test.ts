import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../agent/lease/election.js';
import type { LeaseApi, RequestBound, StoredLease } from '../../agent/lease/lease-api.js';
import type { LeaseRecord } from '../../agent/lease/timing.js';
import { KubeApiError } from '../../common/kube/errors.js';
import { sleep } from '../../common/time.js';

// Short but valid timings: lease 1 s > renewDeadline 500 ms > 1.2 × retry 100 ms.
const timings = { leaseDurationMs: 1_000, renewDeadlineMs: 500, retryPeriodMs: 100 };
const silent = pino({ level: 'silent' });

/** An in-memory Lease with resourceVersion semantics; can be taken down or made to hang. */
class FakeLease implements LeaseApi {
  stored: StoredLease | null = null;
  mode: 'up' | 'down' | 'hang' = 'up';
  writes = 0;

  private async gate(bound: RequestBound): Promise<void> {
    await sleep(2, bound.signal);
    if (this.mode === 'down') throw new KubeApiError('fake', 0, 'Unreachable', 'connection refused');
    if (this.mode === 'hang') {
      await sleep(bound.timeoutMs, bound.signal);
      throw new KubeApiError('fake', 0, 'Timeout', 'timed out');
    }
  }

  private put(record: LeaseRecord): StoredLease {
    this.writes++;
    this.stored = { record: { ...record }, resourceVersion: String(Number(this.stored?.resourceVersion ?? '0') + 1) };
    return this.stored;
  }

  async get(bound: RequestBound): Promise<StoredLease | null> {
    await this.gate(bound);
    return this.stored && { record: { ...this.stored.record }, resourceVersion: this.stored.resourceVersion };
  }

  async create(record: LeaseRecord, bound: RequestBound): Promise<StoredLease> {
    await this.gate(bound);
    if (this.stored) throw new KubeApiError('fake', 409, 'AlreadyExists', 'exists');
    return this.put(record);
  }

  async update(record: LeaseRecord, rv: string, bound: RequestBound): Promise<StoredLease> {
    await this.gate(bound);
    if (!this.stored || this.stored.resourceVersion !== rv) throw new KubeApiError('fake', 409, 'Conflict', 'modified');
    return this.put(record);
  }
}

interface Run {
  elector: LeaderElector;
  stop: AbortController;
  done: Promise<void>;
  events: Array<{ what: 'start' | 'stop'; at: number; reason?: string }>;
}

const runs: Run[] = [];

function start(api: LeaseApi, identity: string, releaseOnCancel = true, mayLead?: (holding: boolean) => { ok: boolean; reason: string }): Run {
  const events: Run['events'] = [];
  const elector = new LeaderElector({
    api,
    identity,
    timings,
    logger: silent,
    releaseOnCancel,
    ...(mayLead ? { mayLead } : {}),
    onStartedLeading: () => events.push({ what: 'start', at: performance.now() }),
    onStoppedLeading: (reason) => events.push({ what: 'stop', at: performance.now(), reason }),
  });
  const stop = new AbortController();
  const run = { elector, stop, done: elector.run(stop.signal), events };
  runs.push(run);
  return run;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

afterEach(async () => {
  for (const r of runs.splice(0)) {
    r.stop.abort();
    await r.done;
  }
});

describe('LeaderElector (in-memory Lease)', () => {
  it('elects exactly one of two candidates, and never two leaders at once', async () => {
    const api = new FakeLease();
    const a = start(api, 'a');
    const b = start(api, 'b');
    await until(() => a.elector.isLeader() || b.elector.isLeader(), 2_000);
    for (let i = 0; i < 50; i++) {
      expect(a.elector.isLeader() && b.elector.isLeader()).toBe(false);
      await sleep(10);
    }
    const leader = a.elector.isLeader() ? 'a' : 'b';
    expect(api.stored?.record.holderIdentity).toBe(leader);
    expect(a.elector.leader()).toBe(leader);
    expect(b.elector.leader()).toBe(leader);
  });

  it('a crashed leader (no release) is replaced after the lease duration, with a transition counted', async () => {
    const api = new FakeLease();
    const a = start(api, 'a', false);
    await until(() => a.elector.isLeader(), 2_000);
    const b = start(api, 'b');
    await sleep(300);
    expect(b.elector.isLeader()).toBe(false);
    a.stop.abort();
    await a.done;
    const stoppedAt = performance.now();
    await until(() => b.elector.isLeader(), 3_000);
    const took = performance.now() - stoppedAt;
    // Not before the lease could have expired from b's point of view, and within lease + jittered retry.
    expect(took).toBeGreaterThan(timings.leaseDurationMs - 2 * timings.retryPeriodMs);
    expect(took).toBeLessThan(timings.leaseDurationMs + 2.2 * timings.retryPeriodMs + 300);
    expect(api.stored?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('a crashed leader restarted under the same identity does not race back: it waits for the lease like the others', async () => {
    const api = new FakeLease();
    const a = start(api, 'a', false);
    await until(() => a.elector.isLeader(), 2_000);
    const b = start(api, 'b');
    await sleep(300);
    a.stop.abort();
    await a.done;
    const crashedAt = performance.now();
    const a2 = start(api, 'a'); // the same pod's next process, sooner than the lease expires
    await sleep(timings.leaseDurationMs / 2);
    expect(a2.elector.isLeader()).toBe(false);
    // Once the lease has expired both are fair candidates (which one wins is a matter of timers);
    // what matters is that nobody, the restarted process included, took it before it expired.
    await until(() => b.elector.isLeader() || a2.elector.isLeader(), 3_000);
    expect(performance.now() - crashedAt).toBeGreaterThan(timings.leaseDurationMs - 2 * timings.retryPeriodMs);
    expect(b.elector.isLeader() && a2.elector.isLeader()).toBe(false);
    expect(['a', 'b']).toContain(api.stored?.record.holderIdentity);
  });

  it('a graceful leader releases: the other takes over well before the lease duration', async () => {
    const api = new FakeLease();
    const a = start(api, 'a');
    await until(() => a.elector.isLeader(), 2_000);
    const b = start(api, 'b');
    await sleep(200);
    a.stop.abort();
    await a.done;
    expect(a.events.map((e) => e.what)).toEqual(['start', 'stop']);
    expect(api.stored?.record).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    const releasedAt = performance.now();
    await until(() => b.elector.isLeader(), 2_000);
    expect(performance.now() - releasedAt).toBeLessThan(2.2 * timings.retryPeriodMs + 200);
  });

  it.each(['down', 'hang'] as const)('steps down within the renew deadline when the API is %s, before the lease can expire', async (mode) => {
    const api = new FakeLease();
    const a = start(api, 'a');
    await until(() => a.elector.isLeader(), 2_000);
    await sleep(150);
    const lastWrite = api.writes;
    const brokeAt = performance.now();
    api.mode = mode;
    await until(() => a.events.some((e) => e.what === 'stop'), 2_000);
    const stop = a.events.find((e) => e.what === 'stop');
    expect(a.elector.isLeader()).toBe(false);
    // At most renewDeadline after the last successful renewal started, which was before brokeAt.
    expect((stop?.at ?? 0) - brokeAt).toBeLessThanOrEqual(timings.renewDeadlineMs + 30);
    expect((stop?.at ?? 0) - brokeAt).toBeLessThan(timings.leaseDurationMs);
    expect(stop?.reason).toContain('renew deadline');
    expect(api.writes).toBe(lastWrite);
    // When the API comes back, it becomes leader again (its own record is still there).
    api.mode = 'up';
    await until(() => a.elector.isLeader(), 3_000);
  });

  it('a leader that may no longer lead (cut off from the mesh majority) releases the lease; the other takes over at once', async () => {
    const api = new FakeLease();
    let aMay = true;
    let bMay = false;
    const a = start(api, 'a', true, () => ({ ok: aMay, reason: 'a: minority side' }));
    await until(() => a.elector.isLeader(), 2_000);
    const b = start(api, 'b', true, () => ({ ok: bMay, reason: 'b: minority side' }));
    await sleep(300);
    expect(b.elector.isLeader()).toBe(false); // b may not contend, a may lead
    aMay = false;
    bMay = true;
    const cutAt = performance.now();
    await until(() => a.events.some((e) => e.what === 'stop'), 1_000);
    expect(a.events.find((e) => e.what === 'stop')?.reason).toContain('may no longer lead: a: minority side');
    await until(() => b.elector.isLeader(), 2_000);
    // Released, not left to expire: well inside the lease duration.
    expect(performance.now() - cutAt).toBeLessThan(timings.leaseDurationMs);
    expect(a.elector.isLeader()).toBe(false);
    await sleep(300);
    expect(a.events.filter((e) => e.what === 'start')).toHaveLength(1); // a does not contend while refused
  });

  it('a leader that finds someone else holding the lease steps down at once', async () => {
    const api = new FakeLease();
    const a = start(api, 'a');
    await until(() => a.elector.isLeader(), 2_000);
    // Someone overwrites the holder (e.g. an operator, or a split we could not see).
    const cur = api.stored as StoredLease;
    api.stored = { record: { ...cur.record, holderIdentity: 'intruder' }, resourceVersion: '999' };
    await until(() => a.events.some((e) => e.what === 'stop'), 1_000);
    expect(a.events.find((e) => e.what === 'stop')?.reason).toContain('lost the lease');
  });

  it('keeps leading when a callback throws (logged, not fatal)', async () => {
    const api = new FakeLease();
    const elector = new LeaderElector({
      api,
      identity: 'a',
      timings,
      logger: silent,
      onStartedLeading: () => {
        throw new Error('coordinator failed to start');
      },
      onStoppedLeading: () => undefined,
    });
    const stop = new AbortController();
    const done = elector.run(stop.signal);
    await until(() => elector.isLeader(), 2_000);
    const writes = api.writes;
    await sleep(350);
    expect(api.writes).toBeGreaterThan(writes);
    stop.abort();
    await done;
  });

  it('validates its timings on construction', () => {
    expect(
      () =>
        new LeaderElector({
          api: new FakeLease(),
          identity: 'a',
          timings: { leaseDurationMs: 1_000, renewDeadlineMs: 1_000, retryPeriodMs: 100 },
          logger: silent,
          onStartedLeading: () => undefined,
          onStoppedLeading: () => undefined,
        }),
    ).toThrow('leaseDuration');
  });
});
