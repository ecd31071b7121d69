// Executes one reconcile batch, in order: `persist` is a CAS write fenced by the term, instance
// actions become mesh commands (to this agent itself too, through the same term check), deletePod
// is a delete with a uid precondition, `event` a Kubernetes Event. A failed gate (batch.ts isGate)
// stops the batch: the next round re-observes and re-plans. Every action is logged with its reason.
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { isGate } from '../decide/batch.js';
import { instanceOf, liveVclock } from '../decide/members.js';
import type { Action, ObservedCluster, ObservedTarantool, PersistedState, Vclock } from '../decide/model.js';
import type { CommandRequest } from '../mesh/mesh.js';
import { parseTarantoolReport, type Ack } from '../wire/mesh-protocol.js';
import type { Snapshot, UpdateOptions } from '../state/store.js';
import { StaleTermError } from '../state/store.js';
import type { ControlMetrics } from './metrics.js';
import { encodeInstanceCommand, type InstanceCommand, type MasterRef } from '../wire/command-payload.js';

export interface ActionDeps {
  store: { update(mutator: (cur: Snapshot<PersistedState>) => PersistedState | undefined, opts: UpdateOptions): Promise<Snapshot<PersistedState>> };
  send: (pod: string, req: CommandRequest, timeoutMs: number, signal: AbortSignal) => Promise<Ack>;
  /** Deletes a pod if it still has `uid`; resolves how it went. */
  deletePod: (pod: string, uid: string | null, signal: AbortSignal) => Promise<'deleted' | 'gone' | 'replaced'>;
  event: (replicaset: string, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** An agent's state as its ack reported it (newer than its last heartbeat). */
  acknowledged: (pod: string, tarantool: ObservedTarantool, at: number) => void;
  /** A persist moved the term (a master change). */
  termChanged: (term: number) => void;
  metrics: ControlMetrics;
  logger: Logger;
}

export interface ActionRecord {
  action: Action;
  ok: boolean;
  error?: string;
  ms: number;
}

export interface BatchOutcome {
  /** The persisted state after the batch (the last successful persist). */
  persisted: PersistedState;
  records: ActionRecord[];
  /** The gate that failed (the rest was not run), or null. */
  stoppedAt: Action | null;
  /** Someone else owns a newer term: this coordinator must stop. */
  stale: StaleTermError | null;
}

/** The agent may work action.budgetMs (decided by the core); its ack is awaited this much longer. */
const ACK_SLACK_MS = 2_000;

/** The replica set's persisted master as a command names it, or null when unknown. */
export function masterRef(persisted: PersistedState, observed: ObservedCluster, replicaset: string): MasterRef | null {
  const state = persisted.replicasets[replicaset];
  const master = state?.master ?? null;
  if (master === null) return null;
  const uuid = state?.members.find((m) => m.pod === master)?.uuid;
  const rs = observed.replicasets.find((r) => r.name === replicaset);
  const inst = rs ? instanceOf(rs, master) : undefined;
  if (!uuid || !inst?.podExists || inst.uri === null) return null;
  return { pod: master, uuid, address: inst.uri };
}

/** The command an instance action becomes; throws when something it needs is unknown. */
export function toInstanceCommand(
  action: Action,
  persisted: PersistedState,
  observed: ObservedCluster,
  fenced: ReadonlyMap<string, Vclock>,
): InstanceCommand {
  if (action.kind === 'persist' || action.kind === 'event' || action.kind === 'deletePod') {
    throw new Error(`${action.kind} is not an instance command`);
  }
  const base = {
    replicaset: action.replicaset,
    pod: action.pod,
    reason: action.reason,
    master: masterRef(persisted, observed, action.replicaset),
    timeoutMs: action.budgetMs,
  };
  switch (action.kind) {
    case 'fence':
      return { ...base, kind: 'fence' };
    case 'bootstrapBuckets':
      return { ...base, kind: 'bootstrapBuckets' };
    case 'findMasters':
      return { ...base, kind: 'findMasters' };
    case 'expel':
      return { ...base, kind: 'expel', expelledPod: action.expelledPod, expelledUuid: action.expelledUuid };
    case 'waitCatchUp': {
      const rs = observed.replicasets.find((r) => r.name === action.replicaset);
      const vclock = fenced.get(action.source) ?? liveVclock(rs ? instanceOf(rs, action.source) : undefined);
      if (!vclock) throw new Error(`the vclock of ${action.source} is unknown: cannot tell ${action.pod} what to catch up to`);
      return { ...base, kind: 'waitCatchUp', source: action.source, vclock: { ...vclock } };
    }
    default: {
      if ((action.kind === 'joinReplica' || action.kind === 'rebootstrap') && base.master === null && action.pod !== persisted.replicasets[action.replicaset]?.master) {
        throw new Error(`the address of ${action.replicaset}'s master is unknown: ${action.pod} has nobody to join`);
      }
      return { ...base, kind: action.kind, replication: [...action.replication], synchroQuorum: action.synchroQuorum };
    }
  }
}

function ackVclock(ack: Ack): Vclock | null {
  const detail = (ack.result as { detail?: { vclock?: unknown } } | undefined)?.detail;
  const v = detail?.vclock;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) if (typeof n === 'number') out[k] = n;
  return out;
}

export async function runBatch(
  actions: readonly Action[],
  start: PersistedState,
  observed: ObservedCluster,
  deps: ActionDeps,
  signal: AbortSignal,
): Promise<BatchOutcome> {
  let persisted = start;
  const fenced = new Map<string, Vclock>();
  const records: ActionRecord[] = [];
  for (const action of actions) {
    signal.throwIfAborted();
    const started = Date.now();
    const log = deps.logger.child({ action: action.kind, ...('pod' in action ? { target: action.pod } : {}), actionTerm: action.term });
    let error: string | undefined;
    try {
      switch (action.kind) {
        case 'persist': {
          const snap = await deps.store.update(() => action.state, { signal, term: persisted.term });
          if (snap.state.term !== persisted.term) deps.termChanged(snap.state.term);
          persisted = snap.state;
          break;
        }
        case 'event':
          deps.event(action.replicaset, action.eventType, action.eventReason, action.reason);
          break;
        case 'deletePod': {
          const how = await deps.deletePod(action.pod, action.uid, signal);
          if (how === 'deleted') deps.metrics.rolloutRestarts.inc({ replicaset: action.replicaset });
          else log.info({ how }, 'pod deletion had nothing to do');
          break;
        }
        default: {
          const cmd = encodeInstanceCommand(toInstanceCommand(action, persisted, observed, fenced));
          const ack = await deps.send(action.pod, { kind: cmd.kind, payload: cmd.payload, term: action.term }, action.budgetMs + ACK_SLACK_MS, signal);
          if (!ack.ok) throw new Error(ack.error ?? 'refused without a reason');
          const result = ack.result as { at?: unknown; tarantool?: unknown } | undefined;
          const report = parseTarantoolReport(result?.tarantool);
          if (report && typeof result?.at === 'number') deps.acknowledged(action.pod, report, result.at);
          if (action.kind === 'fence') {
            const v = ackVclock(ack);
            if (v) fenced.set(action.pod, v);
          }
        }
      }
    } catch (err) {
      if (err instanceof StaleTermError) {
        log.warn({ err: err.message }, 'a newer coordinator owns the state: stopping');
        deps.metrics.actions.inc({ kind: action.kind, outcome: 'failed' });
        records.push({ action, ok: false, error: err.message, ms: Date.now() - started });
        return { persisted, records, stoppedAt: action, stale: err };
      }
      if (signal.aborted) throw err;
      error = errorMessage(err);
    }
    const ms = Date.now() - started;
    records.push({ action, ok: error === undefined, ...(error === undefined ? {} : { error }), ms });
    deps.metrics.actions.inc({ kind: action.kind, outcome: error === undefined ? 'ok' : 'failed' });
    if (error === undefined) {
      if (action.kind !== 'persist' || action.reason) log.info({ reason: action.reason, ms }, `${action.kind} done`);
    } else {
      log.warn({ reason: action.reason, err: error, ms, gate: isGate(action) }, `${action.kind} failed`);
      if (isGate(action)) {
        for (const rest of actions.slice(actions.indexOf(action) + 1)) deps.metrics.actions.inc({ kind: rest.kind, outcome: 'skipped' });
        return { persisted, records, stoppedAt: action, stale: null };
      }
    }
  }
  return { persisted, records, stoppedAt: null, stale: null };
}
