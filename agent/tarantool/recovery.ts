// What Tarantool will meet when it recovers a data directory, judged from the facts shoal.lua's
// offline_vclock() reads from the files before box.cfg. Two defects of Tarantool 2.6.0, reproduced
// with it (test/integration/instance-recovery-hazard.test.ts):
// - a snapshot holding rows of a synchronous space (every replica that joined from scratch has one,
//   and so has any instance after its first checkpoint) is never recovered: box.cfg waits
//   replication_synchro_timeout for a quorum and dies with "transaction rolled back during snapshot
//   recovery", on every start;
// - its own synchronous transactions that no CONFIRM or ROLLBACK follows (a master killed while they
//   waited for their quorum) sit in its synchronous queue without a fiber, and box.ctl.
//   clear_synchro_queue() leaves an instance's own queue alone: made writable again, it dies of a
//   SIGSEGV (fiber_wakeup from txn_limbo_ack) at the first replica acknowledgement.
import type { OfflineVclock } from '../instance/state.js';

/**
 * What this Tarantool process met, or will meet, recovering its data:
 * unrecoverable-snapshot: box.cfg on these files dies, on every start;
 * own-unconfirmed-sync: it recovers, but crashes once made writable and a replica acknowledges.
 */
export interface DataHazard {
  kind: 'unrecoverable-snapshot' | 'own-unconfirmed-sync';
  reason: string;
  /** own-unconfirmed-sync: its id and first unconfirmed lsn; its rows from there on never committed. */
  uncommittedFrom?: { id: number; lsn: number };
}

/** The Tarantool versions these defects were seen with. */
const AFFECTED = /^2\.6\.0(?:[-.]|$)/;

/** Why recovering these files, or serving writes from them in place, would crash Tarantool; null when nothing is known to. */
export function recoveryHazard(o: OfflineVclock): DataHazard | null {
  if (o.tarantool === undefined || !AFFECTED.test(o.tarantool)) return null;
  if (o.syncSnapshotSpace !== undefined && o.snapshot !== undefined) {
    return {
      kind: 'unrecoverable-snapshot',
      reason: `snapshot ${o.snapshot} holds rows of synchronous space ${o.syncSnapshotSpace}, which Tarantool ${o.tarantool} cannot recover (box.cfg dies with "transaction rolled back during snapshot recovery")`,
    };
  }
  const own = o.ownId === undefined ? undefined : o.unconfirmed[String(o.ownId)];
  if (o.ownId !== undefined && own !== undefined) {
    return {
      kind: 'own-unconfirmed-sync',
      reason: `its own synchronous transactions from lsn ${own} on were never confirmed, and Tarantool ${o.tarantool} crashes when a replica acknowledges them on a master restarted with them`,
      uncommittedFrom: { id: o.ownId, lsn: own },
    };
  }
  return null;
}
