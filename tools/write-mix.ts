// The write loads the benchmarks and the chaos suite run: several writers on one is_sync space, each
// a startWriteLoad of its own (its own console connection, its own key range), grouped into named
// loads. The standard mix is a paced writer (one write per 50 ms, the load every figure used to be
// measured with), an unpaced one-at-a-time writer (the next write as soon as the previous one is
// acknowledged: what a single client does, and what shows 2.6.0's 5 s synchro stalls, which 20
// paced writes a second never hit) and a concurrent group (several unpaced writers at once).
// Summaries are per load: writes/s, the longest gap, the time a writer saw no acknowledgement.
import { setMaxListeners } from 'node:events';
import { RecentKeys, startWriteLoad, summarize, type WriteErrorKind, type WriteLoad, type WriteLog, type WriteSummary, type WriteTarget } from './workload.js';

export interface LoadSpec {
  /** Names the load in summaries and figures: unique within a mix. */
  name: string;
  /** Each writer's pace (0 = unpaced, see WriteLoadOptions.intervalMs). */
  intervalMs: number;
  /** Writers running at once, each one write at a time. */
  writers: number;
}

/** Writers of the concurrent load. Four: enough to queue writes behind each other in the synchronous queue, few enough for 2 cores. */
export const CONCURRENT_WRITERS = 4;

export const PACED: LoadSpec = { name: 'paced', intervalMs: 50, writers: 1 };
export const UNPACED: LoadSpec = { name: 'unpaced', intervalMs: 0, writers: 1 };
export const CONCURRENT: LoadSpec = { name: 'concurrent', intervalMs: 0, writers: CONCURRENT_WRITERS };

/** paced + unpaced + concurrent, all at once. */
export const STANDARD_LOADS: readonly LoadSpec[] = [PACED, UNPACED, CONCURRENT];

/**
 * Keys each writer owns. An unpaced writer does about 1,000 writes/s at best here, 1.8 M in a
 * 30-minute chaos run: 100 M leaves room, and a mix of 6 writers spans 6 × 10^8 keys, far inside
 * Number.MAX_SAFE_INTEGER. A writer that uses its range up stops (WriteLog.exhausted).
 */
export const KEYS_PER_WRITER = 100_000_000;

export interface WriterPlan {
  load: string;
  /** 0-based within its load. */
  index: number;
  intervalMs: number;
  firstKey: number;
  lastKey: number;
}

/**
 * The writers of `loads`, in order, each on its own key range: consecutive, disjoint ranges of
 * `keysPerWriter` keys from `firstKey`. Throws on a mix that cannot run (no writer, a duplicate
 * load name, a negative pace, keys past Number.MAX_SAFE_INTEGER).
 */
export function planWriters(loads: readonly LoadSpec[], firstKey: number, keysPerWriter = KEYS_PER_WRITER): WriterPlan[] {
  if (!Number.isSafeInteger(firstKey) || firstKey < 1) throw new Error(`firstKey must be a positive integer, got ${firstKey}`);
  if (!Number.isSafeInteger(keysPerWriter) || keysPerWriter < 1) throw new Error(`keysPerWriter must be a positive integer, got ${keysPerWriter}`);
  const names = new Set<string>();
  const out: WriterPlan[] = [];
  for (const l of loads) {
    if (names.has(l.name)) throw new Error(`two loads named ${l.name}`);
    names.add(l.name);
    if (!Number.isInteger(l.writers) || l.writers < 1) throw new Error(`load ${l.name}: writers must be a positive integer, got ${l.writers}`);
    if (!(l.intervalMs >= 0)) throw new Error(`load ${l.name}: intervalMs must be >= 0, got ${l.intervalMs}`);
    for (let index = 0; index < l.writers; index++) {
      const first = firstKey + out.length * keysPerWriter;
      const last = first + keysPerWriter - 1;
      if (!Number.isSafeInteger(last)) throw new Error(`load ${l.name}: keys up to ${last} are past Number.MAX_SAFE_INTEGER`);
      out.push({ load: l.name, index, intervalMs: l.intervalMs, firstKey: first, lastKey: last });
    }
  }
  if (out.length === 0) throw new Error('a write mix needs at least one writer');
  return out;
}

/** How many keys a mix of `loads` spans from its firstKey (where the next mix on the same space may start). */
export function mixKeySpan(loads: readonly LoadSpec[], keysPerWriter = KEYS_PER_WRITER): number {
  return loads.reduce((n, l) => n + l.writers, 0) * keysPerWriter;
}

export interface LoadSummary {
  name: string;
  intervalMs: number;
  writers: number;
  attempted: number;
  acknowledged: number;
  failed: number;
  /** From the first writer's start to the last writer's stop. */
  durationMs: number;
  /** Acknowledged writes per second over durationMs, all writers of the load together. */
  writesPerS: number;
  /** The longest gap any one writer of the load saw (see summarize): what a client of it waited at worst. */
  longestGapMs: number;
  /** The most time any one writer spent in gaps over gapThresholdMs. */
  unavailableMs: number;
  gapThresholdMs: number;
  /** Gaps over gapThresholdMs, all writers together. */
  gaps: number;
  errors: Partial<Record<WriteErrorKind, number>>;
  /** Writers that used their key range up before the load stopped. */
  exhausted: number;
}

/** Pure: one load's writers' logs summed up (each writer summarized with its own default gap threshold unless given one). */
export function summarizeLoad(name: string, logs: readonly WriteLog[], o: { gapThresholdMs?: number } = {}): LoadSummary {
  const each: WriteSummary[] = logs.map((l) => summarize(l, o));
  const started = Math.min(...logs.map((l) => l.startedAt));
  const ended = Math.max(...logs.map((l) => l.stoppedAt ?? l.attempts.at(-1)?.endedAt ?? l.startedAt));
  const durationMs = logs.length ? ended - started : 0;
  const acknowledged = each.reduce((n, s) => n + s.acknowledged, 0);
  const errors: Partial<Record<WriteErrorKind, number>> = {};
  for (const s of each) for (const [k, v] of Object.entries(s.errors) as [WriteErrorKind, number][]) errors[k] = (errors[k] ?? 0) + v;
  return {
    name,
    intervalMs: logs[0]?.intervalMs ?? 0,
    writers: logs.length,
    attempted: each.reduce((n, s) => n + s.attempted, 0),
    acknowledged,
    failed: each.reduce((n, s) => n + s.failed, 0),
    durationMs,
    writesPerS: durationMs > 0 ? Math.round((acknowledged / durationMs) * 1000 * 10) / 10 : 0,
    longestGapMs: each.reduce((m, s) => Math.max(m, s.longestGapMs), 0),
    unavailableMs: each.reduce((m, s) => Math.max(m, s.unavailableMs), 0),
    gapThresholdMs: each[0]?.gapThresholdMs ?? 0,
    gaps: each.reduce((n, s) => n + s.gaps.length, 0),
    errors,
    exhausted: logs.filter((l) => l.exhausted === true).length,
  };
}

export interface MixSummary {
  loads: LoadSummary[];
  attempted: number;
  acknowledged: number;
  failed: number;
  /** The longest gap of any writer of any load. */
  longestGapMs: number;
  /** Acknowledged and failed writes of every writer per bucket (for the timeline drawing). */
  timeline: WriteSummary['timeline'];
}

/** Pure: the summary of a mix from its writers' plans and logs. */
export function summarizeMix(writers: readonly { plan: WriterPlan; log: WriteLog }[], bucketMs = 100): MixSummary {
  const names = [...new Set(writers.map((w) => w.plan.load))];
  const loads = names.map((n) => summarizeLoad(n, writers.filter((w) => w.plan.load === n).map((w) => w.log)));
  const logs = writers.map((w) => w.log);
  const merged: WriteLog = {
    space: logs[0]?.space ?? '',
    intervalMs: 0,
    startedAt: Math.min(...logs.map((l) => l.startedAt)),
    stoppedAt: Math.max(...logs.map((l) => l.stoppedAt ?? l.startedAt)),
    attempts: logs.flatMap((l) => l.attempts),
  };
  return {
    loads,
    attempted: loads.reduce((n, l) => n + l.attempted, 0),
    acknowledged: loads.reduce((n, l) => n + l.acknowledged, 0),
    failed: loads.reduce((n, l) => n + l.failed, 0),
    longestGapMs: loads.reduce((m, l) => Math.max(m, l.longestGapMs), 0),
    timeline: summarize(merged, { bucketMs }).timeline,
  };
}

/** One line per load: writers, writes/s, longest gap, failures. */
export function describeLoads(loads: readonly LoadSummary[]): string {
  return loads
    .map((l) => {
      const who = `${l.name} (${l.writers} writer${l.writers > 1 ? 's' : ''}, ${l.intervalMs > 0 ? `one write per ${l.intervalMs} ms` : 'unpaced'})`;
      return `${who}: ${l.acknowledged} acknowledged, ${l.writesPerS} writes/s, longest gap ${(l.longestGapMs / 1000).toFixed(2)} s, ${l.failed} failed${l.exhausted ? `, ${l.exhausted} out of keys` : ''}`;
    })
    .join('; ');
}

export interface WriteMixOptions {
  /** The current master (each writer asks on its own, after every failure of its own). */
  target: () => Promise<WriteTarget | null>;
  space: string;
  /** Default STANDARD_LOADS. */
  loads?: readonly LoadSpec[];
  /** Where the mix's key ranges start (planWriters). */
  firstKey: number;
  keysPerWriter?: number;
  writeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Every writer also reads: before each write, with this probability, a get of a key any writer of the mix wrote recently. */
  readShare?: number;
}

export interface WriteMix {
  readonly writers: readonly { plan: WriterPlan; load: WriteLoad }[];
  /** Every writer's log (live: attempts keep being appended until stop()). */
  logs(): WriteLog[];
  /** Acknowledged writes so far, all writers. */
  readonly acknowledged: number;
  /** Stops every writer (each lets its write in flight finish, bounded) and summarizes. */
  stop(): Promise<MixSummary>;
}

export function startWriteMix(o: WriteMixOptions): WriteMix {
  const plans = planWriters(o.loads ?? STANDARD_LOADS, o.firstKey, o.keysPerWriter);
  // The writers listen on one signal of the mix's own (a few listeners each: their loop and the
  // call in flight), not on the caller's, whose other users would then pass Node's warning limit.
  const own = new AbortController();
  setMaxListeners(4 * plans.length + 10, own.signal);
  const forward = (): void => own.abort(o.signal?.reason);
  if (o.signal?.aborted) forward();
  else o.signal?.addEventListener('abort', forward, { once: true });
  const recent = new RecentKeys();
  const writers = plans.map((plan) => ({
    plan,
    load: startWriteLoad({
      target: o.target,
      space: o.space,
      intervalMs: plan.intervalMs,
      firstKey: plan.firstKey,
      lastKey: plan.lastKey,
      ...(o.writeTimeoutMs !== undefined ? { writeTimeoutMs: o.writeTimeoutMs } : {}),
      ...(o.readShare ? { reads: { share: o.readShare, recent } } : {}),
      signal: own.signal,
    }),
  }));
  return {
    writers,
    logs: () => writers.map((w) => w.load.log),
    get acknowledged() {
      return writers.reduce((n, w) => n + w.load.acknowledged, 0);
    },
    async stop() {
      await Promise.all(writers.map((w) => w.load.stop()));
      o.signal?.removeEventListener('abort', forward);
      return summarizeMix(writers.map((w) => ({ plan: w.plan, log: w.load.log })));
    },
  };
}
