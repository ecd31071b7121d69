// Two writable instances, read from the write history rather than sampled (pure). Every acknowledged
// write records the instance that acknowledged it and the synchronous queue's term it was admitted
// under (box.info.synchro.queue.term, read in the same Lua chunk as the insert, with no yield between:
// Tarantool 3.x; 2.6.0 has no such term). A term has one queue owner, and every failover or
// switchover claims a newer term (box.ctl.promote), so two findings prove two writable masters:
// - one term, two instances acknowledging writes in it;
// - a write admitted under an older term that started after a write of a newer term was already
//   acknowledged: the old master took a write (and found a quorum for it) after a newer master had.
// A sampler sees only what is writable at its instants; this sees every acknowledged write.
import type { WriteLog } from './workload.js';

export interface TermWrite {
  instance: string;
  term: number;
  startedAt: number;
  endedAt: number;
  key: number;
}

export interface TermCheck {
  /** Acknowledged writes that carried a term (0 on 2.6.0: the check did not run). */
  checked: number;
  /** Acknowledged writes without a term (2.6.0, or an older workload). */
  withoutTerm: number;
  /** Per term in order: who acknowledged and when (epoch ms). */
  terms: { term: number; instances: string[]; writes: number; firstAckAt: number; lastStartAt: number }[];
  violations: string[];
}

export function acknowledgedTermWrites(logs: readonly WriteLog[]): { writes: TermWrite[]; withoutTerm: number } {
  const writes: TermWrite[] = [];
  let withoutTerm = 0;
  for (const log of logs) {
    for (const a of log.attempts) {
      if (!a.ok || a.target === null) continue;
      if (typeof a.term !== 'number') withoutTerm++;
      else writes.push({ instance: a.target, term: a.term, startedAt: a.startedAt, endedAt: a.endedAt, key: a.key });
    }
  }
  return { writes, withoutTerm };
}

const at = (ms: number): string => new Date(ms).toISOString();

export function checkTerms(writes: readonly TermWrite[], withoutTerm = 0): TermCheck {
  const byTerm = new Map<number, { instances: Map<string, TermWrite>; writes: number; firstAck: TermWrite; lastStart: TermWrite }>();
  for (const w of writes) {
    const t = byTerm.get(w.term);
    if (!t) {
      byTerm.set(w.term, { instances: new Map([[w.instance, w]]), writes: 1, firstAck: w, lastStart: w });
      continue;
    }
    if (!t.instances.has(w.instance)) t.instances.set(w.instance, w);
    t.writes++;
    if (w.endedAt < t.firstAck.endedAt) t.firstAck = w;
    if (w.startedAt > t.lastStart.startedAt) t.lastStart = w;
  }
  const ordered = [...byTerm.entries()].sort(([a], [b]) => a - b);
  const violations: string[] = [];
  for (const [term, t] of ordered) {
    if (t.instances.size > 1) {
      const ex = [...t.instances.values()].map((w) => `${w.instance} (key ${w.key} at ${at(w.endedAt)})`).join(', ');
      violations.push(`term ${term}: ${t.instances.size} instances acknowledged writes: ${ex}`);
    }
  }
  // Newest first, keeping the earliest acknowledgement of any newer term: an older term's write that
  // started after it is a write the old master took while a newer one was already acknowledging.
  let newer: { term: number; w: TermWrite } | null = null;
  for (let i = ordered.length - 1; i >= 0; i--) {
    const [term, t] = ordered[i] as [number, NonNullable<ReturnType<typeof byTerm.get>>];
    if (newer && t.lastStart.startedAt > newer.w.endedAt) {
      violations.push(
        `${t.lastStart.instance} acknowledged key ${t.lastStart.key} in term ${term}, started at ${at(t.lastStart.startedAt)}, ` +
          `after ${newer.w.instance} had acknowledged key ${newer.w.key} in newer term ${newer.term} at ${at(newer.w.endedAt)}`,
      );
    }
    if (!newer || t.firstAck.endedAt < newer.w.endedAt) newer = { term, w: t.firstAck };
  }
  return {
    checked: writes.length,
    withoutTerm,
    terms: ordered.map(([term, t]) => ({ term, instances: [...t.instances.keys()].sort(), writes: t.writes, firstAckAt: t.firstAck.endedAt, lastStartAt: t.lastStart.startedAt })),
    violations,
  };
}

/** The check on a mix's logs. */
export function checkWriteTerms(logs: readonly WriteLog[]): TermCheck {
  const { writes, withoutTerm } = acknowledgedTermWrites(logs);
  return checkTerms(writes, withoutTerm);
}
