import { emptyReplicaSet } from './members.js';
import type {
  ExpelledMember,
  Member,
  PersistedReplicaSet,
  PersistedState,
  QuarantinedMember,
  RolloutProgress,
  SwitchoverProgress,
} from './model.js';

// Validation of the persisted state read back from the ConfigMap: the shell trusts nothing it did
// not just write. Throws an Error that says which field is wrong (the state store wraps it).

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} must be an object`);
  return value as Json;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new Error(`${where} must be a non-empty string`);
  return value;
}

function number(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`${where} must be a non-negative number`);
  return value;
}

function nullable<V>(value: unknown, where: string, read: (v: unknown, w: string) => V): V | null {
  return value === null || value === undefined ? null : read(value, where);
}

function list<V>(value: unknown, where: string, read: (v: unknown, w: string) => V): V[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${where} must be an array`);
  return value.map((item, i) => read(item, `${where}[${i}]`));
}

const member = (v: unknown, w: string): Member => {
  const o = object(v, w);
  return { pod: string(o.pod, `${w}.pod`), uuid: string(o.uuid, `${w}.uuid`), id: nullable(o.id, `${w}.id`, number) };
};

const expelled = (v: unknown, w: string): ExpelledMember => {
  const o = object(v, w);
  return { pod: string(o.pod, `${w}.pod`), uuid: string(o.uuid, `${w}.uuid`) };
};

const WHY: ReadonlyArray<QuarantinedMember['why']> = ['old-master', 'missed-master-change', 'arrived-with-data'];

const quarantined = (v: unknown, w: string): QuarantinedMember => {
  const o = object(v, w);
  const why = WHY.find((x) => x === o.why);
  if (why === undefined) throw new Error(`${w}.why must be one of ${WHY.join(', ')}`);
  return {
    pod: string(o.pod, `${w}.pod`),
    why,
    sinceMs: number(o.sinceMs, `${w}.sinceMs`),
    rebootstrapRequestedAtMs: nullable(o.rebootstrapRequestedAtMs, `${w}.rebootstrapRequestedAtMs`, number),
  };
};

const switchover = (v: unknown, w: string): SwitchoverProgress => {
  const o = object(v, w);
  return {
    from: string(o.from, `${w}.from`),
    to: string(o.to, `${w}.to`),
    startedAtMs: number(o.startedAtMs, `${w}.startedAtMs`),
    reason: typeof o.reason === 'string' ? o.reason : '',
  };
};

const rollout = (v: unknown, w: string): RolloutProgress => {
  const o = object(v, w);
  const inFlight = nullable(o.inFlight, `${w}.inFlight`, (f, fw) => {
    const x = object(f, fw);
    return { pod: string(x.pod, `${fw}.pod`), uid: nullable(x.uid, `${fw}.uid`, string), deletedAtMs: number(x.deletedAtMs, `${fw}.deletedAtMs`) };
  });
  return {
    revision: string(o.revision, `${w}.revision`),
    inFlight,
    oldMaster: nullable(o.oldMaster, `${w}.oldMaster`, string),
    startedAtMs: number(o.startedAtMs, `${w}.startedAtMs`),
  };
};

function replicaSet(v: unknown, w: string): PersistedReplicaSet {
  const o = object(v, w);
  const rs: PersistedReplicaSet = {
    ...emptyReplicaSet(),
    master: nullable(o.master, `${w}.master`, string),
    members: list(o.members, `${w}.members`, member),
    expelled: list(o.expelled, `${w}.expelled`, expelled),
    quarantined: list(o.quarantined, `${w}.quarantined`, quarantined),
    switchover: nullable(o.switchover, `${w}.switchover`, switchover),
    rollout: nullable(o.rollout, `${w}.rollout`, rollout),
    masterQuorum: nullable(o.masterQuorum, `${w}.masterQuorum`, number),
  };
  const pods = rs.members.map((m) => m.pod);
  if (new Set(pods).size !== pods.length) throw new Error(`${w}.members lists a pod twice`);
  if (rs.master !== null && !pods.includes(rs.master)) throw new Error(`${w}.master ${rs.master} is not a member`);
  for (const q of rs.quarantined) if (!pods.includes(q.pod)) throw new Error(`${w}.quarantined ${q.pod} is not a member`);
  return rs;
}

/** The coordinator's state from parsed JSON; throws saying what is wrong. */
export function decodePersistedState(raw: unknown): PersistedState {
  const o = object(raw, 'state');
  if (typeof o.term !== 'number' || !Number.isSafeInteger(o.term) || o.term < 0) throw new Error('state.term must be a non-negative integer');
  const sets = object(o.replicasets ?? {}, 'state.replicasets');
  return {
    term: o.term,
    coordinator: nullable(o.coordinator, 'state.coordinator', string),
    replicasets: Object.fromEntries(Object.entries(sets).map(([name, rs]) => [name, replicaSet(rs, `state.replicasets.${name}`)])),
  };
}

/** For a state store that keeps the envelope's term and holder equal to the state's own. */
export const persistedStateTerm = {
  get: (state: PersistedState): { term: number; coordinator: string | null } => ({ term: state.term, coordinator: state.coordinator }),
  set: (state: PersistedState, term: number, coordinator: string): PersistedState => ({ ...state, term, coordinator }),
};
