// The coordinator's PersistedState as stored in ConfigMap shoal-<cluster>-state: a strict decoder
// (a hand-edited or half-written value is refused with what is wrong, never half-trusted) and the
// term lens that keeps the store's envelope term equal to the state's.
import type {
  ExpelledMember,
  Member,
  PersistedReplicaSet,
  PersistedState,
  QuarantinedMember,
  ReplicationRepair,
  RolloutProgress,
  SwitchoverProgress,
} from '../decide/model.js';
import type { TermLens } from '../state/store.js';
import { QUARANTINE_REASONS, REPAIR_STEPS } from '../decide/model.js';
import { BOOTSTRAP_HOWS, BOOTSTRAP_STATES, type BucketBootstrap, type ShardingState } from '../decide/sharding.js';

type Rec = Record<string, unknown>;

class Bad extends Error {}

function rec(v: unknown, where: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${where} must be an object`);
  return v as Rec;
}

function str(o: Rec, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new Bad(`${where}.${key} must be a non-empty string`);
  return v;
}

function nullableStr(o: Rec, key: string, where: string): string | null {
  return o[key] === null || o[key] === undefined ? null : str(o, key, where);
}

function num(o: Rec, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Bad(`${where}.${key} must be a number`);
  return v;
}

function nullableNum(o: Rec, key: string, where: string): number | null {
  return o[key] === null || o[key] === undefined ? null : num(o, key, where);
}

function nonNegativeInt(o: Rec, key: string, where: string): number {
  const v = num(o, key, where);
  if (!Number.isSafeInteger(v) || v < 0) throw new Bad(`${where}.${key} must be a non-negative integer`);
  return v;
}

function list<T>(o: Rec, key: string, where: string, item: (v: unknown, where: string) => T): T[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Bad(`${where}.${key} must be an array`);
  return v.map((x, i) => item(x, `${where}.${key}[${i}]`));
}

const member = (v: unknown, where: string): Member => {
  const o = rec(v, where);
  const id = nullableNum(o, 'id', where);
  if (id !== null && (!Number.isSafeInteger(id) || id < 0)) throw new Bad(`${where}.id must be a non-negative integer or null`);
  return { pod: str(o, 'pod', where), uuid: str(o, 'uuid', where), id };
};

const expelled = (v: unknown, where: string): ExpelledMember => {
  const o = rec(v, where);
  return { pod: str(o, 'pod', where), uuid: str(o, 'uuid', where) };
};

function oneOf<T extends string>(o: Rec, key: string, values: readonly T[], where: string): T {
  const v = o[key];
  if (!(values as readonly unknown[]).includes(v)) throw new Bad(`${where}.${key} must be one of ${values.map((r) => `"${r}"`).join(', ')}`);
  return v as T;
}

const quarantined = (v: unknown, where: string): QuarantinedMember => {
  const o = rec(v, where);
  return {
    pod: str(o, 'pod', where),
    why: oneOf(o, 'why', QUARANTINE_REASONS, where),
    sinceMs: num(o, 'sinceMs', where),
    rebootstrapRequestedAtMs: nullableNum(o, 'rebootstrapRequestedAtMs', where),
  };
};

function diverged(o: Rec, where: string): boolean {
  const v = o['diverged'];
  if (v !== undefined && typeof v !== 'boolean') throw new Bad(`${where}.diverged must be a boolean`);
  return v === true;
}

const repair = (v: unknown, where: string): ReplicationRepair => {
  const o = rec(v, where);
  return {
    pod: str(o, 'pod', where),
    error: typeof o['error'] === 'string' ? o['error'] : '',
    sinceMs: num(o, 'sinceMs', where),
    step: oneOf(o, 'step', REPAIR_STEPS, where),
    stepAtMs: num(o, 'stepAtMs', where),
    rebootstraps: nonNegativeInt(o, 'rebootstraps', where),
    // Absent in states written before it existed, and when false.
    ...(diverged(o, where) ? { diverged: true } : {}),
  };
};

function switchover(v: unknown, where: string): SwitchoverProgress | null {
  if (v === null || v === undefined) return null;
  const o = rec(v, where);
  return { from: str(o, 'from', where), to: str(o, 'to', where), startedAtMs: num(o, 'startedAtMs', where), reason: typeof o['reason'] === 'string' ? o['reason'] : '' };
}

function rollout(v: unknown, where: string): RolloutProgress | null {
  if (v === null || v === undefined) return null;
  const o = rec(v, where);
  const f = o['inFlight'];
  let inFlight: RolloutProgress['inFlight'] = null;
  if (f !== null && f !== undefined) {
    const fo = rec(f, `${where}.inFlight`);
    inFlight = { pod: str(fo, 'pod', `${where}.inFlight`), uid: nullableStr(fo, 'uid', `${where}.inFlight`), deletedAtMs: num(fo, 'deletedAtMs', `${where}.inFlight`) };
  }
  return { revision: typeof o['revision'] === 'string' ? o['revision'] : '', inFlight, oldMaster: nullableStr(o, 'oldMaster', where), startedAtMs: num(o, 'startedAtMs', where) };
}

function replicaSet(v: unknown, where: string): PersistedReplicaSet {
  const o = rec(v, where);
  const rs: PersistedReplicaSet = {
    master: nullableStr(o, 'master', where),
    members: list(o, 'members', where, member),
    expelled: list(o, 'expelled', where, expelled),
    quarantined: list(o, 'quarantined', where, quarantined),
    switchover: switchover(o['switchover'], `${where}.switchover`),
    rollout: rollout(o['rollout'], `${where}.rollout`),
    // Absent in states written before it existed: unknown.
    masterQuorum: nullableNum(o, 'masterQuorum', where),
    // Absent in states written before it existed: none.
    repairs: o['repairs'] === undefined ? [] : list(o, 'repairs', where, repair),
  };
  // Structure only: relations between fields are the core's invariants (its property tests), and a
  // refused write would stop all coordination.
  return rs;
}

function oneOfValues<T extends string>(o: Rec, key: string, where: string, allowed: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new Bad(`${where}.${key} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function sharding(v: unknown, where: string): ShardingState {
  const o = rec(v, where);
  if (o['bootstrap'] === null || o['bootstrap'] === undefined) return { bootstrap: null };
  const b = rec(o['bootstrap'], `${where}.bootstrap`);
  const w = `${where}.bootstrap`;
  const bootstrap: BucketBootstrap = {
    state: oneOfValues(b, 'state', w, BOOTSTRAP_STATES),
    how: b['how'] === null || b['how'] === undefined ? null : oneOfValues(b, 'how', w, BOOTSTRAP_HOWS),
    by: str(b, 'by', w),
    atMs: num(b, 'atMs', w),
  };
  if (bootstrap.state === 'done' && bootstrap.how === null) throw new Bad(`${w}.how must say how a done bootstrap happened`);
  return { bootstrap };
}

/** Validates a stored PersistedState; throws with the path of the first problem. */
export function decodePersistedState(raw: unknown): PersistedState {
  try {
    const o = rec(raw, 'state');
    const sets = rec(o['replicasets'], 'state.replicasets');
    const replicasets: Record<string, PersistedReplicaSet> = {};
    for (const [name, v] of Object.entries(sets)) replicasets[name] = replicaSet(v, `state.replicasets.${name}`);
    const state: PersistedState = { term: nonNegativeInt(o, 'term', 'state'), coordinator: nullableStr(o, 'coordinator', 'state'), replicasets };
    // Absent in the state of a cluster that never sharded (and of every coordinator before sharding).
    return o['sharding'] === undefined ? state : { ...state, sharding: sharding(o['sharding'], 'state.sharding') };
  } catch (err) {
    if (err instanceof Bad) throw new Error(err.message);
    throw err;
  }
}

/** The state carries its own term and coordinator: the store mirrors them in its envelope. */
export const persistedLens: TermLens<PersistedState> = {
  get: (s) => ({ term: s.term, coordinator: s.coordinator }),
  set: (s, term, coordinator) => ({ ...s, term, coordinator }),
};
