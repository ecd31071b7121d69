import { admissionVerdict } from './admission.js';
import { compareWithMaster, describeComparison, upstreamCondition } from './divergence.js';
import { detectMasterFailure } from './failover.js';
import { seconds } from './format.js';
import { desiredReplication, instanceOf, isMember, isQuarantined, isWritable, liveVclock } from './members.js';
import type {
  PlannedAction,
  ObservedInstance,
  ObservedReplicaSet,
  ObservedUpstream,
  PersistedReplicaSet,
  ReplicationRepair,
  Timings,
} from './model.js';
import { rebootstrapBlocker } from './rebootstraps.js';
import { note, type Step } from './step.js';

// Repair of a replica whose upstream from the master stopped with an error. "stopped" is the
// applier's state for errors it does not retry (network trouble shows as disconnected and heals by
// itself). Tarantool 2.6 stops this way after a rejoin under synchronous load (ER_SYNC_MASTER_MISMATCH:
// a CONFIRM for a master its empty synchro queue does not know). Remedies, mildest first: restart
// its replication; if it is still stopped after catchUpTimeoutMs, rebootstrap it with the same
// identity (old data kept aside). Only while the master is settled, never the master, never a replica
// holding rows the master lacks (admission.ts decides that), never one that is terminating.
// A replica stopped on a data conflict (divergence.ts) is no restart case: it is reported as diverged
// (a Warning Event, once), its data compared with the master's, all components, and it is rebootstrapped
// with its data kept aside, that copy being the record of whatever rows the master lacks. Every
// rebootstrap here waits for its turn: one member of a replica set at a time (rebootstraps.ts).

/** Rebootstraps per repair: each keeps a copy of the data aside, so they are bounded. */
export const MAX_REPAIR_REBOOTSTRAPS = 5;

/** `inst`'s upstream from `master` when it is stopped; null when it runs, or is unknown. */
export function stoppedUpstream(inst: ObservedInstance, master: ObservedInstance): ObservedUpstream | null {
  const up = inst.tarantool?.upstreams.find((u) => u.uuid === master.instanceUuid);
  return up?.status === 'stopped' ? up : null;
}

const follows = (inst: ObservedInstance, master: ObservedInstance): boolean =>
  inst.tarantool?.upstreams.some((u) => u.uuid === master.instanceUuid && u.status === 'follow') ?? false;

const stopped = (up: ObservedUpstream): string => `stopped: ${up.message ?? 'no message'}`;

/**
 * Errors a replication restart is known not to heal, so the repair goes straight to the rebootstrap:
 * on Tarantool 2.6 the master sends the same CONFIRM again after every reconnect (seen in
 * test/integration/instance-rejoin-sync.test.ts), so restarting would only add catchUpTimeoutMs.
 */
const RESTART_DOES_NOT_HEAL: readonly RegExp[] = [/CONFIRM message arrived for an unknown master id/];

const restartHeals = (up: ObservedUpstream): boolean => !RESTART_DOES_NOT_HEAL.some((re) => re.test(up.message ?? ''));

/** A repair entry starting (or restarting, after a rejoin) with `step` now. */
const begin = (pod: string, up: ObservedUpstream, entry: ReplicationRepair | null, now: number): ReplicationRepair => ({
  pod,
  error: up.message ?? '',
  sinceMs: entry?.sinceMs ?? now,
  step: 'restarted',
  stepAtMs: now,
  rebootstraps: entry?.rebootstraps ?? 0,
});

/** Why no repair may run now in this replica set (null = the master is settled). */
function holdReason(rs: ObservedReplicaSet, state: PersistedReplicaSet, now: number, timings: Timings): string | null {
  if (state.switchover !== null) return `a switchover from ${state.switchover.from} to ${state.switchover.to} is in progress`;
  const master = instanceOf(rs, state.master);
  if (!master || state.master === null || !isWritable(master)) return 'there is no writable master';
  const failure = detectMasterFailure(rs, state.master, now, timings);
  return failure.verdict === 'up' ? null : failure.reason;
}

interface Outcome {
  /** The pod's entry after this round; null = no repair (any more). */
  entry: ReplicationRepair | null;
  commands: PlannedAction[];
  reason: string;
}

const keep = (entry: ReplicationRepair | null, reason: string): Outcome => ({ entry, commands: [], reason });

function restart(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  inst: ObservedInstance,
  up: ObservedUpstream,
  master: string,
  entry: ReplicationRepair | null,
  now: number,
): Outcome {
  const reason = `${inst.pod} ${stopped(up)} (upstream from ${master}): restarting its replication`;
  const next = begin(inst.pod, up, entry, now);
  const commands: PlannedAction[] = [
    { kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'ReplicationRestart', reason },
    { kind: 'restartReplication', replicaset: rs.name, pod: inst.pod, reason, ...desiredReplication(rs, state) },
  ];
  return { entry: next, commands, reason };
}

/** Rebootstrap `inst` (a new one counts; asking again for one not yet seen happen does not). */
function rebootstrapNow(rs: ObservedReplicaSet, state: PersistedReplicaSet, inst: ObservedInstance, entry: ReplicationRepair, now: number, reason: string): Outcome {
  const rebootstraps = entry.step === 'rebootstrapping' ? entry.rebootstraps : entry.rebootstraps + 1;
  const commands: PlannedAction[] = [
    { kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Rebootstrap', reason },
    { kind: 'rebootstrap', replicaset: rs.name, pod: inst.pod, reason, ...desiredReplication(rs, state) },
  ];
  return { entry: { ...entry, step: 'rebootstrapping', stepAtMs: now, rebootstraps }, commands, reason };
}

const rebootstrap = (rs: ObservedReplicaSet, state: PersistedReplicaSet, inst: ObservedInstance, up: ObservedUpstream, entry: ReplicationRepair, now: number, why: string): Outcome =>
  rebootstrapNow(rs, state, inst, entry, now, `${inst.pod} ${stopped(up)} ${why}: rebootstrapping it from ${state.master ?? 'the master'}, old data kept aside`);

const giveUp = (pod: string, up: ObservedUpstream, entry: ReplicationRepair): Outcome =>
  keep(entry, `${pod} ${stopped(up)} after ${entry.rebootstraps} rebootstraps: giving up, an operator must look (old data in shoal-diverged-*)`);

// admission.ts names its remedy; here the finding alone is the reason not to act.
const finding = (reason: string): string => reason.replace(/: rebootstrapping it, old data kept aside.*$/, '');

/** What the planner needs besides the replica set: the round so far. */
interface Round {
  now: number;
  timings: Timings;
  /** Pods other commands of this round target. */
  busy: ReadonlySet<string>;
  /** Commands planned so far in this round (a rebootstrap among them takes the one slot). */
  planned: readonly PlannedAction[];
}

/**
 * A replica stopped on a data conflict: reported once (Event `Diverged`, with both vclocks and what
 * it holds that the master lacks), never restarted, rebootstrapped with its data kept aside when no
 * other member's rebootstrap is under way.
 */
function repairDiverged(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  inst: ObservedInstance,
  up: ObservedUpstream,
  entry: ReplicationRepair | null,
  master: ObservedInstance,
  round: Round,
): Outcome {
  const { pod } = inst;
  const { now, timings } = round;
  const found = `${pod} diverged from ${master.pod}: its applier stopped on a conflicting row (${up.message ?? 'no message'})`;
  const mine = inst.tarantool?.vclock ?? null;
  const theirs = liveVclock(master);
  if (mine === null || theirs === null) return keep(entry, `${found}; waiting for both vclocks to compare them`);
  if (isWritable(inst)) return keep(entry, `${found}; ${pod} is writable: fencing it first`);
  const record = describeComparison(pod, mine, master.pod, theirs, compareWithMaster(mine, theirs, master.tarantool?.id ?? null));
  // Reported once per divergence: on first sight, and again if it diverges again after a rejoin.
  const fresh = entry?.diverged !== true || entry.step === 'rejoining';
  const requested = entry?.step === 'rebootstrapping';
  const reported: ReplicationRepair = !fresh && entry ? entry : requested && entry ? { ...entry, diverged: true } : { ...begin(pod, up, entry, now), diverged: true };
  const report: PlannedAction[] = fresh ? [{ kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Diverged', reason: `${found}; ${record}` }] : [];
  const waiting = (why: string): Outcome => ({ entry: reported, commands: report, reason: `${found}; ${record}; not rebootstrapped yet: ${why}` });
  const asked = now - reported.stepAtMs;
  if (reported.step === 'rebootstrapping' && asked < timings.rebootstrapRetryMs) {
    return { entry: reported, commands: report, reason: `${found}; rebootstrap of ${pod} requested ${seconds(asked)} ago; waiting for it` };
  }
  if (round.busy.has(pod) || inst.deleting) return waiting('another change to it goes first');
  const blocker = rebootstrapBlocker(state, pod, round.planned, now, timings);
  if (blocker !== null) return waiting(blocker);
  if (reported.rebootstraps >= MAX_REPAIR_REBOOTSTRAPS) {
    const spent = giveUp(pod, up, reported);
    return { ...spent, commands: report };
  }
  const again = reported.step === 'rebootstrapping' ? ` (asked ${seconds(asked)} ago, not seen done)` : '';
  const done = rebootstrapNow(rs, state, inst, reported, now, `${found}; ${record}: rebootstrapping it from ${master.pod}${again}, its old data kept aside`);
  return { ...done, commands: [...report, ...done.commands] };
}

function repairOne(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  pod: string,
  entry: ReplicationRepair | null,
  master: ObservedInstance,
  round: Round,
): Outcome {
  const { now, timings, busy } = round;
  const inst = instanceOf(rs, pod);
  if (!inst || !inst.podExists || !isMember(state, pod) || pod === state.master || isQuarantined(state, pod)) {
    return keep(null, entry === null ? '' : `${pod} is no longer a replica to repair`);
  }
  const t = inst.tarantool;
  if (!inst.agentReachable || !t || !t.alive || !t.configured) {
    // Moving its data aside ends the process: the rebootstrap is under way, the rejoin comes next.
    if (entry?.step === 'rebootstrapping') return keep({ ...entry, step: 'rejoining', stepAtMs: now }, `${pod} restarts empty to rejoin ${master.pod}`);
    return keep(entry, entry === null ? '' : `waiting for ${pod} to come back`);
  }
  const up = stoppedUpstream(inst, master);
  if (entry === null && up === null) return keep(null, '');
  const elapsed = entry === null ? 0 : now - entry.stepAtMs;
  if (entry !== null && follows(inst, master)) {
    const aside = entry.diverged === true ? ' (its diverged data is kept in shoal-diverged-*)' : '';
    if (elapsed >= timings.catchUpTimeoutMs) return keep(null, `${pod} follows ${master.pod} again: repaired${aside}`);
    return keep(entry, `${pod} follows ${master.pod} again; watching it for ${seconds(timings.catchUpTimeoutMs)}`);
  }
  if (up === null) return keep(entry, `${pod} reconnects to ${master.pod}`);
  if (upstreamCondition(up) === 'diverged') return repairDiverged(rs, state, inst, up, entry, master, round);
  const verdict = admissionVerdict(inst, master);
  if (verdict.verdict === 'rebootstrap') return keep(entry, `${pod} ${stopped(up)}, not repaired: ${finding(verdict.reason)}`);
  if (verdict.verdict === 'wait') return keep(entry, verdict.reason);
  if (busy.has(pod) || inst.deleting) return keep(entry, `${pod} ${stopped(up)}; another change to it goes first`);
  const blocker = rebootstrapBlocker(state, pod, round.planned, now, timings);
  if (entry === null || entry.step === 'rejoining') {
    if (restartHeals(up)) return restart(rs, state, inst, up, master.pod, entry, now);
    const fresh = begin(pod, up, entry, now);
    if (fresh.rebootstraps >= MAX_REPAIR_REBOOTSTRAPS) return giveUp(pod, up, fresh);
    if (blocker !== null) return keep(entry, `${pod} ${stopped(up)}, to be rebootstrapped: ${blocker}`);
    return rebootstrap(rs, state, inst, up, fresh, now, '(an error a replication restart does not heal)');
  }
  if (entry.step === 'rebootstrapping') {
    if (elapsed >= timings.rebootstrapRetryMs) return rebootstrap(rs, state, inst, up, entry, now, `and the rebootstrap requested ${seconds(elapsed)} ago did not happen`);
    return keep(entry, `rebootstrap of ${pod} requested ${seconds(elapsed)} ago; waiting for it`);
  }
  if (elapsed < timings.catchUpTimeoutMs) {
    return keep(entry, `${pod} ${stopped(up)}; replication restarted ${seconds(elapsed)} ago, rebootstrap at ${seconds(timings.catchUpTimeoutMs)}`);
  }
  if (entry.rebootstraps >= MAX_REPAIR_REBOOTSTRAPS) return giveUp(pod, up, entry);
  if (blocker !== null) return keep(entry, `${pod} ${stopped(up)} ${seconds(elapsed)} after its replication was restarted, to be rebootstrapped: ${blocker}`);
  return rebootstrap(rs, state, inst, up, entry, now, `${seconds(elapsed)} after its replication was restarted`);
}

/**
 * Restart, then rebootstrap, replicas whose upstream from the master stopped; report and rebootstrap
 * diverged ones (see above). `planned`: the commands of this round so far.
 */
export function planReplicationRepair(
  rs: ObservedReplicaSet,
  state: PersistedReplicaSet,
  now: number,
  timings: Timings,
  busy: ReadonlySet<string>,
  planned: readonly PlannedAction[] = [],
): Step | null {
  const master = instanceOf(rs, state.master);
  const tracked = new Set(state.repairs.map((r) => r.pod));
  const newlyStuck = master
    ? state.members.filter((m) => {
        const inst = instanceOf(rs, m.pod);
        return !tracked.has(m.pod) && m.pod !== state.master && inst?.tarantool?.configured === true && stoppedUpstream(inst, master) !== null;
      })
    : [];
  if (newlyStuck.length === 0 && state.repairs.length === 0) return null;
  const hold = holdReason(rs, state, now, timings);
  if (hold !== null || !master) {
    const pods = [...tracked, ...newlyStuck.map((m) => m.pod)].join(', ');
    return note(state, `not repairing the replication of ${pods}: ${hold ?? 'there is no master'}`);
  }
  // In order, each seeing the commands before it: a rebootstrap planned here takes the one slot.
  const outcomes: Outcome[] = [];
  const work: Array<[string, ReplicationRepair | null]> = [...state.repairs.map((e): [string, ReplicationRepair] => [e.pod, e]), ...newlyStuck.map((m): [string, null] => [m.pod, null])];
  for (const [i, [pod, entry]] of work.entries()) {
    const sofar = [...planned, ...outcomes.flatMap((o) => o.commands)];
    // The repairs as this round has left them so far (a finished rejoin frees the slot at once).
    const repairs = [...outcomes.flatMap((o) => (o.entry === null ? [] : [o.entry])), ...work.slice(i).flatMap(([, e]) => (e === null ? [] : [e]))];
    outcomes.push(repairOne(rs, { ...state, repairs }, pod, entry, master, { now, timings, busy, planned: sofar }));
  }
  const repairs = outcomes.flatMap((o) => (o.entry === null ? [] : [o.entry]));
  return {
    state: { ...state, repairs },
    commands: outcomes.flatMap((o) => o.commands),
    bumpTerm: false,
    reason: outcomes.map((o) => o.reason).filter((r) => r !== '').join('; '),
    final: false,
  };
}
