// The operation history of a write mix, for a linearizability checker (tools/linearizability, Porcupine):
// one operation per line, JSON. Pure except `writeHistory`. Every key is written once (by the write of
// one seq, storing that seq), so a put is (key, seq) and a get's value is the seq it found or null.
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadAttempt, WriteAttempt, WriteLog } from './workload.js';

/** ok: took effect (a get: returned this value); failed: certainly did not; unknown: may or may not have (a timeout, a lost connection). */
export type HistoryOutcome = 'ok' | 'failed' | 'unknown';

export interface HistoryOp {
  /** The writer (index in the mix): one operation at a time. */
  client: number;
  kind: 'put' | 'get';
  key: number;
  /** put: the value written; get: the value read, null = absent (or unknown/failed: null). */
  value: number | null;
  /** Microseconds, epoch. */
  call: number;
  /** null when the outcome is unknown (Porcupine: never returned). */
  return: number | null;
  outcome: HistoryOutcome;
  /** The instance the operation went to (null: none known, never sent). */
  instance: string | null;
}

/**
 * What a failed write means. Refused by a read-only instance (checked before anything reaches the WAL):
 * failed. Never sent (no target): failed. Anything else — a timeout, a lost connection, a quorum
 * timeout or rollback (a new leader's PROMOTE may still confirm a transaction the old one gave up) —
 * unknown.
 */
export function writeOutcome(a: Pick<WriteAttempt, 'ok' | 'errorKind' | 'error'>): HistoryOutcome {
  if (a.ok) return 'ok';
  if (a.errorKind === 'no-target') return 'failed';
  if (a.errorKind === 'lua' && /read-only|read_only|readonly/i.test(a.error ?? '')) return 'failed';
  return 'unknown';
}

/** A failed get changes nothing: failed whatever the reason (the checker drops it). */
export function readOutcome(r: Pick<ReadAttempt, 'ok'>): HistoryOutcome {
  return r.ok ? 'ok' : 'failed';
}

const us = (ms: number): number => Math.round(ms * 1000);

/** Every writer's puts and gets, ordered by call time. */
export function historyOf(logs: readonly WriteLog[]): HistoryOp[] {
  const ops: HistoryOp[] = [];
  logs.forEach((log, client) => {
    for (const a of log.attempts) {
      const outcome = writeOutcome(a);
      ops.push({ client, kind: 'put', key: a.key, value: a.seq, call: us(a.startedAt), return: outcome === 'unknown' ? null : us(a.endedAt), outcome, instance: a.target });
    }
    for (const r of log.reads ?? []) {
      const outcome = readOutcome(r);
      ops.push({ client, kind: 'get', key: r.key, value: r.ok ? (r.value ?? null) : null, call: us(r.startedAt), return: us(r.endedAt), outcome, instance: r.target });
    }
  });
  return ops.sort((a, b) => a.call - b.call);
}

/**
 * The final state as gets (one client of its own, after the load stopped and the set settled): for
 * every key a put was attempted on, what one instance's full read found — present (the key's one
 * value, its seq) or absent. So a lost acknowledged write or a write that failed for certain but is
 * there after all fails the linearizability check too.
 */
export function finalReads(logs: readonly WriteLog[], present: ReadonlySet<number>, from: number, to: number, instance: string): HistoryOp[] {
  const client = logs.length;
  return logs.flatMap((log) =>
    log.attempts.map((a): HistoryOp => ({ client, kind: 'get', key: a.key, value: present.has(a.key) ? a.seq : null, call: us(from), return: us(to), outcome: 'ok', instance })),
  );
}

export interface HistoryCounts {
  puts: number;
  gets: number;
  ok: number;
  failed: number;
  unknown: number;
}

export function countHistory(ops: readonly HistoryOp[]): HistoryCounts {
  const c: HistoryCounts = { puts: 0, gets: 0, ok: 0, failed: 0, unknown: 0 };
  for (const o of ops) {
    c[o.kind === 'put' ? 'puts' : 'gets']++;
    c[o.outcome]++;
  }
  return c;
}

/** Writes the history as JSON lines (streamed in 1 MiB chunks: a long run has millions of operations). */
export async function writeHistory(file: string, ops: readonly HistoryOp[]): Promise<void> {
  function* chunks(): Generator<string> {
    let chunk = '';
    for (const op of ops) {
      chunk += `${JSON.stringify(op)}\n`;
      if (chunk.length > 1 << 20) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}
