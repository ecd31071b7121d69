// A write load with every attempt logged, for failover/rollout e2e tests, the chaos suite and the
// benchmarks. One write at a time (insert {key, seq, ts} into an is_sync space) through the admin
// console of whatever instance `target()` names as the master. A write is ACKNOWLEDGED only when
// the console returned success: with a synchronous space that means a quorum has it in its WAL, so
// an acknowledged key missing anywhere after the cluster settles is a lost write. A timed-out or
// aborted write is not acknowledged (it may or may not have committed): never count it as either.
// With `reads`, a share of the operations are gets of recently written keys (any writer's) on the
// same master, refused by an instance that is read-only at that moment: the history a
// linearizability checker reads (tools/history.ts).
import { ConsoleClient } from '../agent/console/client.js';
import { ConsoleProtocolError, ConsoleTimeoutError, LuaError, TarantoolGoneError } from '../agent/console/errors.js';
import { abortAfter } from '../common/abort.js';
import { sleep } from '../common/time.js';

/** Where the current master's admin console is. */
export interface WriteTarget {
  name: string;
  console: string;
}

export interface WriteLoadOptions {
  /** The current master, asked again after every failure; null = none known right now. */
  target: () => Promise<WriteTarget | null>;
  /** An is_sync space whose primary key is an unsigned first field. */
  space: string;
  /**
   * Pace while writes succeed: the next write starts `intervalMs` after the previous one started.
   * 0 = unpaced: the next write starts as soon as the previous one is acknowledged.
   */
  intervalMs: number;
  /** Aborting ends the load at once; the write in flight is recorded as failed ('aborted'). */
  signal?: AbortSignal;
  /** Key of the first write (later ones are firstKey + seq - 1). Default 1. */
  firstKey?: number;
  /**
   * Last key this writer may use (its range is firstKey … lastKey, disjoint from every other
   * writer on the space): the writer stops when its range is used up (log.exhausted) rather than
   * write a key it does not own. Default: unbounded.
   */
  lastKey?: number;
  /** Bound of one write (connect + insert + quorum wait). Default 10 s. */
  writeTimeoutMs?: number;
  /** Bound of one target() call. Default 5 s. */
  resolveTimeoutMs?: number;
  /** Backoff after failures: starts at max(intervalMs, 10 ms), doubles, capped here. Default 200 ms. */
  backoffMaxMs?: number;
  /** Gets between the writes: none when unset. */
  reads?: ReadOptions;
}

export interface ReadOptions {
  /** Before each write, a get happens with this probability. */
  share: number;
  /** Keys to read from; the writer adds the key of every write that has returned (whatever its outcome). */
  recent: RecentKeys;
  /** [0, 1) draws; default Math.random. */
  random?: () => number;
}

/** A ring of the keys written last (several writers share one): where the gets pick their keys. */
export class RecentKeys {
  private readonly ring: number[] = [];
  private next = 0;
  constructor(private readonly size = 256) {}
  add(key: number): void {
    if (this.ring.length < this.size) this.ring.push(key);
    else this.ring[this.next] = key;
    this.next = (this.next + 1) % this.size;
  }
  pick(p: number): number | undefined {
    return this.ring[Math.min(this.ring.length - 1, Math.floor(p * this.ring.length))];
  }
}

/** One get: value is the seq stored under the key (each key is written once, by the write of that seq), null when absent. */
export interface ReadAttempt {
  key: number;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  value?: number | null;
  error?: string;
  errorKind?: WriteErrorKind;
  target: string | null;
}

export type WriteErrorKind = 'no-target' | 'gone' | 'timeout' | 'lua' | 'protocol' | 'aborted' | 'other';

/** One write attempt. Times are epoch ms (fractional, monotonic within the process). */
export interface WriteAttempt {
  seq: number;
  key: number;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
  errorKind?: WriteErrorKind;
  /** Name of the instance written to; null when no target was known. */
  target: string | null;
  /** Acknowledged: the synchronous queue's term it was admitted under (null on 2.6.0). */
  term?: number | null;
}

export interface WriteLog {
  space: string;
  intervalMs: number;
  startedAt: number;
  /** Set by stop() or abort. */
  stoppedAt?: number;
  /** The writer used up its key range (WriteLoadOptions.lastKey) and stopped writing before stop(). */
  exhausted?: boolean;
  attempts: WriteAttempt[];
  /** The gets (WriteLoadOptions.reads), in order. */
  reads?: ReadAttempt[];
}

/** A period without a successful write (see summarize for where it starts and ends). */
export interface WriteGap {
  from: number;
  to: number;
  ms: number;
  /** Failed attempts inside it. */
  failures: number;
  /** Still open when the load stopped. */
  open: boolean;
}

export interface WriteSummary {
  attempted: number;
  acknowledged: number;
  failed: number;
  durationMs: number;
  /** Longest time between consecutive acknowledged writes; after failures it counts from the first failed attempt. */
  longestGapMs: number;
  /** Sum of the gaps longer than gapThresholdMs: time in which writes were not available. */
  unavailableMs: number;
  gapThresholdMs: number;
  /** The gaps longer than gapThresholdMs, in order. */
  gaps: WriteGap[];
  /** Acknowledged (by the time of the acknowledgement) and failed writes per bucket from log.startedAt. */
  timeline: { startedAt: number; bucketMs: number; successes: number[]; failures: number[] };
  errors: Partial<Record<WriteErrorKind, number>>;
}

export interface WriteLoad {
  readonly log: WriteLog;
  readonly acknowledged: number;
  readonly failed: number;
  /** Lets the write in flight finish (it is bounded), stops, closes the console and summarizes. */
  stop(): Promise<WriteSummary>;
}

/**
 * Returns the synchronous queue's term the write was admitted under (read with no yield before the
 * insert; null on 2.6.0, which has no box.info.synchro): tools/write-terms.ts checks them.
 */
const INSERT = `local space, key, seq, ts = ...
local synchro = box.info.synchro
local term = synchro ~= nil and synchro.queue.term or box.NULL
box.space[space]:insert{key, seq, ts}
return term`;
/** A get only a writable instance answers (no yield between the check and the read). */
const GET = `local space, key = ...
if box.info.ro then error('read-only: not the master') end
local t = box.space[space]:get{key}
if t == nil then return {found = false} end
return {found = true, seq = t[2]}`;

const now = (): number => performance.timeOrigin + performance.now();

/** The first retry after a failure waits at least this long (an unpaced writer would otherwise retry at once). */
const MIN_BACKOFF_MS = 10;

export function startWriteLoad(o: WriteLoadOptions): WriteLoad {
  const log: WriteLog = { space: o.space, intervalMs: o.intervalMs, startedAt: now(), attempts: [], reads: [] };
  const random = o.reads?.random ?? Math.random;
  const stopping = new AbortController();
  const aborted = o.signal ?? new AbortController().signal;
  const wake = AbortSignal.any([stopping.signal, aborted]);
  const writeTimeoutMs = o.writeTimeoutMs ?? 10_000;
  const resolveTimeoutMs = o.resolveTimeoutMs ?? 5_000;
  const backoffMaxMs = Math.max(o.intervalMs, o.backoffMaxMs ?? 200);
  const firstKey = o.firstKey ?? 1;
  let acknowledged = 0;
  let failed = 0;

  let current: WriteTarget | null = null;
  let client: ConsoleClient | undefined;
  const switchTo = async (t: WriteTarget | null): Promise<void> => {
    if (t?.console !== current?.console) {
      await client?.close();
      // failFast: a dead console is one failed attempt now, not a silent retry inside the client.
      client = t ? new ConsoleClient({ socketPath: t.console, timeoutMs: writeTimeoutMs, connectAttemptMs: Math.min(writeTimeoutMs, 2_000) }) : undefined;
    }
    current = t;
  };

  const run = async (): Promise<void> => {
    let resolveNeeded = true;
    let failuresInRow = 0;
    let nextAt = now();
    /** Resolves the target when the last operation failed, then runs one console call on it; records whom it asked. */
    const onTarget = async <T>(op: { target: string | null }, call: (c: ConsoleClient) => Promise<T>): Promise<T> => {
      if (resolveNeeded) {
        await switchTo(await resolveTarget(o.target, resolveTimeoutMs, aborted));
        resolveNeeded = false;
      }
      op.target = current?.name ?? null;
      if (!client) throw new NoTargetError();
      return call(client);
    };
    /** After a failure: back off (doubling from max(intervalMs, 10 ms), capped) and resolve the target again. */
    const failedOnce = (): void => {
      failuresInRow++;
      resolveNeeded = true;
      nextAt = now() + Math.min(backoffMaxMs, Math.max(MIN_BACKOFF_MS, o.intervalMs) * 2 ** (failuresInRow - 1));
    };
    for (let seq = 1; !wake.aborted; seq++) {
      await sleepUntil(nextAt, wake);
      if (wake.aborted) break;
      if (o.lastKey !== undefined && firstKey + seq - 1 > o.lastKey) {
        log.exhausted = true;
        break;
      }
      const readKey = o.reads && random() < o.reads.share ? o.reads.recent.pick(random()) : undefined;
      if (readKey !== undefined) {
        const read: ReadAttempt = { key: readKey, startedAt: now(), endedAt: 0, ok: false, target: current?.name ?? null };
        try {
          read.value = decodeGet(await onTarget(read, (c) => c.eval(GET, [o.space, readKey], { timeoutMs: writeTimeoutMs, signal: aborted, failFast: true })));
          read.ok = true;
        } catch (err) {
          read.error = describe(err);
          read.errorKind = aborted.aborted ? 'aborted' : kindOf(err);
        } finally {
          read.endedAt = now();
          (log.reads ??= []).push(read);
        }
        if (!read.ok) {
          failedOnce();
          seq--; // the write of this seq has not happened yet
          continue;
        }
      }
      const attempt: WriteAttempt = { seq, key: firstKey + seq - 1, startedAt: now(), endedAt: 0, ok: false, target: current?.name ?? null };
      try {
        const s = seq;
        const term = await onTarget(attempt, (c) => c.eval(INSERT, [o.space, attempt.key, s, Math.round(attempt.startedAt)], { timeoutMs: writeTimeoutMs, signal: aborted, failFast: true }));
        attempt.ok = true;
        attempt.term = typeof term === 'number' ? term : null;
        acknowledged++;
        failuresInRow = 0;
        nextAt = attempt.startedAt + o.intervalMs;
      } catch (err) {
        attempt.error = describe(err);
        attempt.errorKind = aborted.aborted ? 'aborted' : kindOf(err);
        failed++;
        failedOnce();
      } finally {
        attempt.endedAt = now();
        log.attempts.push(attempt);
        if (attempt.target !== null) o.reads?.recent.add(attempt.key);
      }
    }
  };
  const done = run().finally(async () => {
    log.stoppedAt ??= now();
    await client?.close();
  });

  return {
    log,
    get acknowledged() {
      return acknowledged;
    },
    get failed() {
      return failed;
    },
    async stop() {
      log.stoppedAt ??= now();
      stopping.abort();
      await done;
      return summarize(log);
    },
  };
}

function decodeGet(r: unknown): number | null {
  if (r !== null && typeof r === 'object' && !Array.isArray(r)) {
    const v = r as Record<string, unknown>;
    if (v['found'] === false) return null;
    if (v['found'] === true && typeof v['seq'] === 'number') return v['seq'];
  }
  throw new ConsoleProtocolError(`unexpected get reply ${JSON.stringify(r)}`);
}

class NoTargetError extends Error {
  constructor(detail?: string) {
    super(`no write target${detail ? `: ${detail}` : ' (target() returned null)'}`);
    this.name = 'NoTargetError';
  }
}

/** target() bounded: it takes no signal, so a hung call is left behind (its result ignored). */
async function resolveTarget(target: WriteLoadOptions['target'], timeoutMs: number, signal: AbortSignal): Promise<WriteTarget | null> {
  // abortAfter, not AbortSignal.any: a long chaos run resolves often, and any() leaks on Node 20.
  const bound = abortAfter(timeoutMs, () => new NoTargetError(`target() did not answer within ${timeoutMs} ms`), signal);
  const call = target();
  call.catch(() => undefined);
  try {
    return await Promise.race([
      call,
      new Promise<never>((_, reject) => {
        if (bound.signal.aborted) reject(bound.signal.reason);
        bound.signal.addEventListener('abort', () => reject(bound.signal.reason), { once: true });
      }),
    ]);
  } catch (err) {
    if (err instanceof NoTargetError) throw err;
    throw new NoTargetError(`target() failed: ${describe(err)}`);
  } finally {
    bound.unlink();
  }
}

async function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const ms = at - now();
  if (ms <= 0 || signal.aborted) return;
  await sleep(ms, signal).catch(() => undefined);
}

function kindOf(err: unknown): WriteErrorKind {
  if (err instanceof NoTargetError) return 'no-target';
  if (err instanceof LuaError) return 'lua';
  if (err instanceof TarantoolGoneError) return 'gone';
  if (err instanceof ConsoleTimeoutError) return 'timeout';
  if (err instanceof ConsoleProtocolError) return 'protocol';
  return 'other';
}

function describe(err: unknown): string {
  if (err instanceof LuaError) return err.luaMessage;
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/**
 * What an unpaced writer (intervalMs 0) counts as unavailability: a write slower than this. Its
 * gaps are its writes' latencies, so "2 × intervalMs" (0) would count every write as an outage.
 * 200 ms: above the slowest healthy synchronous write seen on Tarantool 3.8 (88 ms, raw processes,
 * docs/TARANTOOL3.md) with room for a loaded 2-core machine, far below the 5 s stalls of
 * 2.6.0 and the failover timeout; twice the 100 ms a paced 50 ms writer uses.
 */
export const UNPACED_GAP_THRESHOLD_MS = 200;

/** The default gap threshold of a load: 2 × intervalMs when paced (one write late), UNPACED_GAP_THRESHOLD_MS when unpaced. */
export function defaultGapThresholdMs(intervalMs: number): number {
  return intervalMs > 0 ? 2 * intervalMs : UNPACED_GAP_THRESHOLD_MS;
}

export interface SummarizeOptions {
  /** Gaps longer than this count as unavailability. Default defaultGapThresholdMs(intervalMs). */
  gapThresholdMs?: number;
  /** Timeline bucket. Default 100 ms. */
  bucketMs?: number;
}

/**
 * Pure summary of a log. A gap ends at an acknowledgement (its endedAt) and starts at the previous
 * acknowledgement, or — when attempts failed in between — at the start of the first failed one, so
 * an outage is timed from when the load first ran into it. Failures before the first
 * acknowledgement open a gap too; failures at the end leave a gap open until stoppedAt.
 */
export function summarize(log: WriteLog, o: SummarizeOptions = {}): WriteSummary {
  const threshold = o.gapThresholdMs ?? defaultGapThresholdMs(log.intervalMs);
  const bucketMs = o.bucketMs ?? 100;
  const end = log.stoppedAt ?? log.attempts.at(-1)?.endedAt ?? log.startedAt;
  const all: WriteGap[] = [];
  const errors: Partial<Record<WriteErrorKind, number>> = {};
  let lastAck: number | undefined;
  let firstFailure: number | undefined;
  let failures = 0;
  for (const a of log.attempts) {
    if (!a.ok) {
      firstFailure ??= a.startedAt;
      failures++;
      const k = a.errorKind ?? 'other';
      errors[k] = (errors[k] ?? 0) + 1;
      continue;
    }
    const from = firstFailure ?? lastAck;
    if (from !== undefined) all.push({ from, to: a.endedAt, ms: a.endedAt - from, failures, open: false });
    lastAck = a.endedAt;
    firstFailure = undefined;
    failures = 0;
  }
  if (firstFailure !== undefined) all.push({ from: firstFailure, to: end, ms: end - firstFailure, failures, open: true });

  const buckets = Math.max(1, Math.ceil((end - log.startedAt) / bucketMs));
  const successes = new Array<number>(buckets).fill(0);
  const failuresPerBucket = new Array<number>(buckets).fill(0);
  for (const a of log.attempts) {
    const i = Math.min(buckets - 1, Math.max(0, Math.floor((a.endedAt - log.startedAt) / bucketMs)));
    if (a.ok) successes[i] = (successes[i] ?? 0) + 1;
    else failuresPerBucket[i] = (failuresPerBucket[i] ?? 0) + 1;
  }
  const gaps = all.filter((g) => g.ms > threshold);
  const acknowledged = log.attempts.filter((a) => a.ok).length;
  return {
    attempted: log.attempts.length,
    acknowledged,
    failed: log.attempts.length - acknowledged,
    durationMs: end - log.startedAt,
    longestGapMs: all.reduce((m, g) => Math.max(m, g.ms), 0),
    unavailableMs: gaps.reduce((s, g) => s + g.ms, 0),
    gapThresholdMs: threshold,
    gaps,
    timeline: { startedAt: log.startedAt, bucketMs, successes, failures: failuresPerBucket },
    errors,
  };
}

function isLogList(x: WriteLog | readonly WriteLog[]): x is readonly WriteLog[] {
  return Array.isArray(x);
}

/** One writer's log or several writers' logs, as a list. */
export function logsOf(logs: WriteLog | readonly WriteLog[]): readonly WriteLog[] {
  return isLogList(logs) ? logs : [logs];
}

/** The keys of the acknowledged writes of one log or of several writers' logs (one space), ascending. */
export function acknowledgedKeys(logs: WriteLog | readonly WriteLog[]): number[] {
  const all = logsOf(logs);
  const keys = all.flatMap((l) => l.attempts.filter((a) => a.ok).map((a) => a.key));
  return keys.sort((a, b) => a - b);
}

/**
 * The first write acknowledged after `t` (e.g. a kill) in one log, or the earliest acknowledged
 * (by endedAt) across several writers' logs: its endedAt − t is the time to recover.
 */
export function firstAcknowledgedAfter(logs: WriteLog | readonly WriteLog[], t: number): WriteAttempt | undefined {
  const all = logsOf(logs);
  let first: WriteAttempt | undefined;
  for (const l of all) {
    const a = l.attempts.find((x) => x.ok && x.startedAt >= t);
    if (a && (first === undefined || a.endedAt < first.endedAt)) first = a;
  }
  return first;
}

export interface AckCheck {
  name: string;
  /** Acknowledged keys the instance does not have (empty when error is set: unknown). */
  missing: number[];
  /** Keys the instance's space holds. */
  keysRead: number;
  /** The instance could not be read (no answer, no space): the check did not happen. */
  error?: string;
  /** With VerifyOptions.keepKeys: every key the last read found, and when that read started and ended (epoch ms). */
  present?: ReadonlySet<number>;
  readFrom?: number;
  readTo?: number;
}

export interface VerifyOptions {
  /** Keys read per console call. Default 5000. */
  batch?: number;
  /** Bound of one console call. Default 30 s. */
  callTimeoutMs?: number;
  /** Re-read an instance that misses keys (or cannot be read) until this bound: lets a lagging replica catch up. Default 0. */
  settleMs?: number;
  /** Return the keys found (AckCheck.present): the final reads of a history. */
  keepKeys?: boolean;
  signal?: AbortSignal;
}

const READ_KEYS = `local space, after, limit = ...
local s = box.space[space]
if s == nil then error('no space ' .. tostring(space)) end
local keys = {}
for _, t in s.index[0]:pairs(after == nil and {} or {after}, {iterator = 'GT'}) do
  keys[#keys + 1] = t[1]
  if #keys >= limit then break end
end
return keys`;

/**
 * For each instance, the acknowledged keys of `logs` missing from its space (read in batches
 * through its console). Several logs = several writers on one space: every writer's keys are
 * looked for (a space read once per instance, not once per writer).
 */
export async function verifyAcknowledged(logs: WriteLog | readonly WriteLog[], instances: readonly WriteTarget[], o: VerifyOptions = {}): Promise<AckCheck[]> {
  const all = logsOf(logs);
  const spaces = [...new Set(all.map((l) => l.space))];
  if (spaces.length !== 1) throw new Error(`verifyAcknowledged: the logs must write one space, got ${spaces.length === 0 ? 'no log' : spaces.join(', ')}`);
  const wanted = acknowledgedKeys(all);
  return Promise.all(instances.map((inst) => verifyOne(spaces[0] ?? '', wanted, inst, o)));
}

async function verifyOne(space: string, wanted: number[], inst: WriteTarget, o: VerifyOptions): Promise<AckCheck> {
  const callTimeoutMs = o.callTimeoutMs ?? 30_000;
  const client = new ConsoleClient({ socketPath: inst.console, timeoutMs: callTimeoutMs });
  const until = Date.now() + (o.settleMs ?? 0);
  try {
    for (;;) {
      let check: AckCheck;
      try {
        const readFrom = now();
        const present = await readKeys(client, space, o.batch ?? 5000, callTimeoutMs, o.signal);
        check = { name: inst.name, missing: wanted.filter((k) => !present.has(k)), keysRead: present.size, ...(o.keepKeys ? { present, readFrom, readTo: now() } : {}) };
      } catch (err) {
        if (o.signal?.aborted) throw err;
        check = { name: inst.name, missing: [], keysRead: 0, error: describe(err) };
      }
      if ((check.missing.length === 0 && check.error === undefined) || Date.now() >= until) return check;
      await sleep(200, o.signal);
    }
  } finally {
    await client.close();
  }
}

async function readKeys(client: ConsoleClient, space: string, batch: number, timeoutMs: number, signal?: AbortSignal): Promise<Set<number>> {
  const keys = new Set<number>();
  let after: number | null = null;
  for (;;) {
    const r = await client.eval(READ_KEYS, [space, after, batch], { timeoutMs, signal });
    // An empty Lua table may come back as {} rather than [].
    const page = Array.isArray(r) ? r : [];
    for (const k of page) {
      if (typeof k !== 'number') throw new Error(`space ${space} has a non-numeric key ${JSON.stringify(k)}`);
      keys.add(k);
    }
    if (page.length < batch) return keys;
    after = page[page.length - 1] as number;
  }
}
