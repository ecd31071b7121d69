// The mesh's wire format: one JSON object per websocket text frame, validated by hand before anything
// acts on it. A message that fails validation is reported with a reason (for the metric and the log)
// and dropped. The validated message is rebuilt from known fields only: unknown fields (say, from a
// newer agent during a rolling upgrade) are ignored, never passed on.
import { isDns1123Label } from '../../common/dns.js';
import { isRecord, type JsonRecord } from '../../common/json.js';
import type { BucketCounts, RouterView, VshardReport } from '../decide/sharding.js';

export const PROTOCOL_VERSION = 1;
/** Largest message acted on; larger ones are dropped. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

export type InstanceRole = 'master' | 'replica' | 'unconfigured' | 'fenced';
const ROLES: readonly InstanceRole[] = ['master', 'replica', 'unconfigured', 'fenced'];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** One entry of box.info.replication as seen from this instance. */
export interface UpstreamStatus {
  /** The upstream's URI or pod. */
  peer: string;
  /** box.info.replication[n].upstream.status: follow, sync, stopped, disconnected, … */
  status: string;
  lag: number | null;
  idle: number | null;
  message: string | null;
}

/**
 * The coordinator's view of one Tarantool (decide/model.ts ObservedTarantool), as its agent
 * reports it. Optional on the wire: an agent of an older version omits it and the coordinator then
 * treats the instance as unknown, never as empty.
 */
export interface TarantoolReport {
  configured: boolean;
  /** The console answers. */
  alive: boolean;
  ro: boolean;
  /** box.info.status, or unconfigured / configuring / unreachable / exiting / failed. */
  status: string;
  /** box.info.vclock, or the data directory's vclock read offline before box.cfg; null = unknown. */
  vclock: Record<string, number> | null;
  id: number | null;
  upstreamOk: boolean;
  /** box.info.replication upstreams by peer UUID; absent on the wire from an older agent (= none). */
  upstreams: Array<{ uuid: string; status: string; message: string | null }>;
  lagMs: number | null;
  /** box.cfg.replication as host:port. */
  replication: string[];
  synchroQuorum: number | null;
  /** box.space._cluster instance UUIDs; null = not read. */
  clusterUuids: string[] | null;
  /** What recovering its data meets (tarantool/recovery.ts DataHazard); absent from an older agent (= none known). */
  hazard?: { kind: (typeof HAZARD_KINDS)[number]; reason: string; uncommittedFrom?: { id: number; lsn: number } } | null;
  /** Tarantool 3's synchronous queue (box.info.synchro.queue); null on 2.6, absent from an older agent. */
  synchro?: { owner: number; term: number; len: number } | null;
  /** sharding.roles of a native-style user config (SPEC §4b); absent: the Lua style or an older agent. */
  shardingRoles?: string[];
  /** vshard on the instance: storage bucket counts, a router's view; absent/null: not configured. */
  vshard?: VshardReport | null;
}

const HAZARD_KINDS = ['unrecoverable-snapshot', 'own-unconfirmed-sync'] as const;

/** What an agent reports about its Tarantool. */
export interface InstanceState {
  role: InstanceRole;
  ro: boolean;
  /** box.info.vclock: replica id → LSN. */
  vclock: Record<string, number>;
  lag: number | null;
  healthy: boolean;
  configured: boolean;
  upstreams: UpstreamStatus[];
  tarantool?: TarantoolReport;
}

export interface Hello {
  type: 'hello';
  v: number;
  pod: string;
  cluster: string;
  /** Highest coordinator term this agent has seen. */
  term: number;
  agentVersion: string;
}

export interface Heartbeat {
  type: 'heartbeat';
  v: number;
  pod: string;
  /** Highest term the sender has seen (informational: only the state ConfigMap is authoritative). */
  term: number;
  /** Sender's wall clock (ms since epoch), for display only. */
  sentAt: number;
  agentVersion: string;
  /** The peers the sender currently hears from: the coordinator's input for "unreachable from a majority". */
  sees: string[];
  instance: InstanceState;
}

/** The mesh message that carries a command to an agent (its payload: command-payload.ts). */
export interface CommandMessage {
  type: 'command';
  v: number;
  id: string;
  term: number;
  /** The coordinator pod. */
  from: string;
  kind: string;
  payload: JsonObject;
}

export interface Ack {
  type: 'ack';
  v: number;
  id: string;
  ok: boolean;
  error?: string;
  result?: JsonValue;
}

export interface TopologyPush {
  type: 'topology';
  v: number;
  term: number;
  from: string;
  topology: JsonObject;
}

export type MeshMessage = Hello | Heartbeat | CommandMessage | Ack | TopologyPush;

export type InvalidReason = 'too_large' | 'binary' | 'not_json' | 'not_object' | 'bad_version' | 'unknown_type' | 'bad_field';

export type ParseResult = { ok: true; msg: MeshMessage } | { ok: false; reason: InvalidReason; detail: string };

/** Thrown inside the validators, turned into a ParseResult at the boundary. */
class Invalid extends Error {
  constructor(
    readonly reason: InvalidReason,
    detail: string,
  ) {
    super(detail);
  }
}

const POD = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const KIND = /^[a-z][A-Za-z0-9_.-]{0,63}$/;
const VCLOCK_ID = /^(?:[0-9]|[12][0-9]|3[01])$/; // Tarantool's VCLOCK_MAX is 32
const MAX_DEPTH = 32;
const MAX_PEERS = 1024;

type Rec = JsonRecord;

function field(o: Rec, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function str(o: Rec, key: string, max: number, pattern?: RegExp): string {
  const v = field(o, key);
  if (typeof v !== 'string' || v.length > max || (pattern && !pattern.test(v))) {
    throw new Invalid('bad_field', `"${key}" must be a string${pattern ? ` matching ${pattern.source}` : ''} of at most ${max} characters`);
  }
  return v;
}

function nullableStr(o: Rec, key: string, max: number): string | null {
  return field(o, key) === null ? null : str(o, key, max);
}

function int(o: Rec, key: string): number {
  const v = field(o, key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Invalid('bad_field', `"${key}" must be a non-negative integer`);
  return v;
}

function nullableNum(o: Rec, key: string): number | null {
  const v = field(o, key);
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Invalid('bad_field', `"${key}" must be a non-negative number or null`);
  return v;
}

function bool(o: Rec, key: string): boolean {
  const v = field(o, key);
  if (typeof v !== 'boolean') throw new Invalid('bad_field', `"${key}" must be a boolean`);
  return v;
}

function obj(o: Rec, key: string): Rec {
  const v = field(o, key);
  if (!isRecord(v)) throw new Invalid('bad_field', `"${key}" must be an object`);
  return v;
}

/** Checks a free-form JSON value (payload, result, topology) for depth and forbidden keys. */
function checkJson(v: unknown, key: string, depth = 0): JsonValue {
  if (depth > MAX_DEPTH) throw new Invalid('bad_field', `"${key}" is nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (const item of v) checkJson(item, key, depth + 1);
  } else if (isRecord(v)) {
    for (const k of Object.keys(v)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new Invalid('bad_field', `"${key}" contains the forbidden key "${k}"`);
      checkJson(v[k], key, depth + 1);
    }
  } else if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new Invalid('bad_field', `"${key}" contains a non-finite number`);
  } else if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    throw new Invalid('bad_field', `"${key}" is not JSON`);
  }
  return v as JsonValue;
}

function jsonObject(o: Rec, key: string): JsonObject {
  return checkJson(obj(o, key), key) as JsonObject;
}

function vclock(o: Rec): Record<string, number> {
  const v = obj(o, 'vclock');
  const out: Record<string, number> = {};
  for (const [id, lsn] of Object.entries(v)) {
    if (!VCLOCK_ID.test(id)) throw new Invalid('bad_field', `"vclock" key "${id.slice(0, 16)}" is not a replica id 0..31`);
    if (typeof lsn !== 'number' || !Number.isSafeInteger(lsn) || lsn < 0) throw new Invalid('bad_field', `"vclock" entry ${id} must be a non-negative integer`);
    out[id] = lsn;
  }
  return out;
}

function upstreams(o: Rec): UpstreamStatus[] {
  const v = field(o, 'upstreams');
  if (!Array.isArray(v) || v.length > 64) throw new Invalid('bad_field', '"upstreams" must be an array of at most 64 entries');
  return v.map((u) => {
    if (!isRecord(u)) throw new Invalid('bad_field', '"upstreams" entries must be objects');
    return { peer: str(u, 'peer', 512), status: str(u, 'status', 64), lag: nullableNum(u, 'lag'), idle: nullableNum(u, 'idle'), message: nullableStr(u, 'message', 1024) };
  });
}

const ADDRESS = /^[A-Za-z0-9.:[\]_-]{1,253}:[0-9]{1,5}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STATUS = /^[a-z][a-z_-]{0,63}$/;
const MAX_MEMBERS = 64;

function nullableInt(o: Rec, key: string): number | null {
  return field(o, key) === null ? null : int(o, key);
}

function strings(o: Rec, key: string, pattern: RegExp, max: number): string[] {
  const v = field(o, key);
  if (!Array.isArray(v) || v.length > max) throw new Invalid('bad_field', `"${key}" must be an array of at most ${max} entries`);
  return v.map((s) => {
    if (typeof s !== 'string' || !pattern.test(s)) throw new Invalid('bad_field', `"${key}" entries must match ${pattern.source}`);
    return s;
  });
}

function peerUpstreams(t: Rec): TarantoolReport['upstreams'] {
  const v = field(t, 'upstreams');
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_MEMBERS) throw new Invalid('bad_field', `"upstreams" must be an array of at most ${MAX_MEMBERS} entries`);
  return v.map((u) => {
    if (!isRecord(u)) throw new Invalid('bad_field', '"upstreams" entries must be objects');
    return { uuid: str(u, 'uuid', 36, UUID), status: str(u, 'status', 64, STATUS), message: nullableStr(u, 'message', 1024) };
  });
}

function dataHazard(t: Rec): TarantoolReport['hazard'] {
  const v = field(t, 'hazard');
  if (v === undefined || v === null) return v;
  if (!isRecord(v)) throw new Invalid('bad_field', '"hazard" must be an object or null');
  const kind = HAZARD_KINDS.find((k) => k === field(v, 'kind'));
  if (kind === undefined) throw new Invalid('bad_field', `"hazard.kind" must be one of ${HAZARD_KINDS.join(', ')}`);
  const from = field(v, 'uncommittedFrom');
  if (from === undefined) return { kind, reason: str(v, 'reason', 1024) };
  if (!isRecord(from)) throw new Invalid('bad_field', '"hazard.uncommittedFrom" must be an object');
  return { kind, reason: str(v, 'reason', 1024), uncommittedFrom: { id: int(from, 'id'), lsn: int(from, 'lsn') } };
}

function synchroQueue(t: Rec): TarantoolReport['synchro'] {
  const v = field(t, 'synchro');
  if (v === undefined || v === null) return v;
  if (!isRecord(v)) throw new Invalid('bad_field', '"synchro" must be an object or null');
  return { owner: int(v, 'owner'), term: int(v, 'term'), len: int(v, 'len') };
}

function tarantoolReport(i: Rec): TarantoolReport {
  const t = obj(i, 'tarantool');
  const vc = field(t, 'vclock');
  const hazard = dataHazard(t);
  const synchro = synchroQueue(t);
  return {
    configured: bool(t, 'configured'),
    alive: bool(t, 'alive'),
    ro: bool(t, 'ro'),
    status: str(t, 'status', 64, STATUS),
    vclock: vc === null ? null : vclock(t),
    id: nullableInt(t, 'id'),
    upstreamOk: bool(t, 'upstreamOk'),
    upstreams: peerUpstreams(t),
    lagMs: nullableNum(t, 'lagMs'),
    replication: strings(t, 'replication', ADDRESS, MAX_MEMBERS),
    synchroQuorum: nullableInt(t, 'synchroQuorum'),
    clusterUuids: field(t, 'clusterUuids') === null ? null : strings(t, 'clusterUuids', UUID, MAX_MEMBERS),
    ...(hazard === undefined ? {} : { hazard }),
    ...(synchro === undefined ? {} : { synchro }),
    ...(field(t, 'shardingRoles') === undefined ? {} : { shardingRoles: strings(t, 'shardingRoles', ROLE_NAME, 8) }),
    ...vshardReport(t),
  };
}

const ROLE_NAME = /^[A-Za-z0-9_.-]{0,64}$/;
const RS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function vshardReport(t: Rec): { vshard?: VshardReport | null } {
  const v = field(t, 'vshard');
  if (v === undefined) return {};
  if (v === null) return { vshard: null };
  if (!isRecord(v)) throw new Invalid('bad_field', '"vshard" must be an object or null');
  const out: VshardReport = {};
  const st = field(v, 'storage');
  if (st !== undefined) {
    if (!isRecord(st)) throw new Invalid('bad_field', '"vshard.storage" must be an object');
    const b: BucketCounts = { active: int(st, 'active'), sending: int(st, 'sending'), receiving: int(st, 'receiving'), garbage: int(st, 'garbage'), pinned: int(st, 'pinned'), total: int(st, 'total') };
    out.storage = b;
  }
  const r = field(v, 'router');
  if (r !== undefined) {
    if (!isRecord(r)) throw new Invalid('bad_field', '"vshard.router" must be an object');
    const m = obj(r, 'masters');
    const names = Object.keys(m);
    if (names.length > MAX_MEMBERS) throw new Invalid('bad_field', `"vshard.router.masters" must have at most ${MAX_MEMBERS} replica sets`);
    const masters: Record<string, string | null> = {};
    for (const name of names) {
      if (!RS_NAME.test(name)) throw new Invalid('bad_field', '"vshard.router.masters" keys must be replica set names');
      masters[name] = m[name] === null ? null : str(m, name, 253, POD);
    }
    const view: RouterView = { masters, unknown: int(r, 'unknown'), unreachable: int(r, 'unreachable'), availableRw: int(r, 'availableRw') };
    out.router = view;
  }
  return { vshard: out };
}

/** A TarantoolReport carried elsewhere (a command's ack result), validated like a heartbeat's; null if invalid. */
export function parseTarantoolReport(v: unknown): TarantoolReport | null {
  try {
    return tarantoolReport({ tarantool: v });
  } catch {
    return null;
  }
}

function instance(o: Rec): InstanceState {
  const i = obj(o, 'instance');
  const role = field(i, 'role');
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw new Invalid('bad_field', `"role" must be one of ${ROLES.join(', ')}`);
  return {
    role: role as InstanceRole,
    ro: bool(i, 'ro'),
    vclock: vclock(i),
    lag: nullableNum(i, 'lag'),
    healthy: bool(i, 'healthy'),
    configured: bool(i, 'configured'),
    upstreams: upstreams(i),
    ...(field(i, 'tarantool') === undefined ? {} : { tarantool: tarantoolReport(i) }),
  };
}

function pods(o: Rec, key: string): string[] {
  const v = field(o, key);
  if (!Array.isArray(v) || v.length > MAX_PEERS) throw new Invalid('bad_field', `"${key}" must be an array of at most ${MAX_PEERS} pod names`);
  return v.map((p) => {
    if (typeof p !== 'string' || p.length > 253 || !POD.test(p)) throw new Invalid('bad_field', `"${key}" entries must be pod names`);
    return p;
  });
}

function validate(o: Rec): MeshMessage {
  const v = field(o, 'v');
  if (v !== PROTOCOL_VERSION) throw new Invalid('bad_version', `protocol version ${JSON.stringify(v)} is not ${PROTOCOL_VERSION}`);
  const type = field(o, 'type');
  switch (type) {
    case 'hello': {
      const cluster = str(o, 'cluster', 63);
      if (!isDns1123Label(cluster)) throw new Invalid('bad_field', '"cluster" must be a DNS-1123 label');
      return { type, v, pod: str(o, 'pod', 253, POD), cluster, term: int(o, 'term'), agentVersion: str(o, 'agentVersion', 64) };
    }
    case 'heartbeat':
      return {
        type,
        v,
        pod: str(o, 'pod', 253, POD),
        term: int(o, 'term'),
        sentAt: int(o, 'sentAt'),
        agentVersion: str(o, 'agentVersion', 64),
        sees: pods(o, 'sees'),
        instance: instance(o),
      };
    case 'command':
      return { type, v, id: str(o, 'id', 128, ID), term: int(o, 'term'), from: str(o, 'from', 253, POD), kind: str(o, 'kind', 64, KIND), payload: jsonObject(o, 'payload') };
    case 'ack': {
      const ack: Ack = { type, v, id: str(o, 'id', 128, ID), ok: bool(o, 'ok') };
      if (field(o, 'error') !== undefined) ack.error = str(o, 'error', 4096);
      if (field(o, 'result') !== undefined) ack.result = checkJson(field(o, 'result'), 'result');
      return ack;
    }
    case 'topology':
      return { type, v, term: int(o, 'term'), from: str(o, 'from', 253, POD), topology: jsonObject(o, 'topology') };
    default:
      throw new Invalid('unknown_type', `unknown message type ${JSON.stringify(type)?.slice(0, 32)}`);
  }
}

/** Parses and validates one frame. Never throws. */
export function parseMessage(data: string | Buffer, isBinary = false, maxBytes = MAX_MESSAGE_BYTES): ParseResult {
  try {
    if (isBinary) return { ok: false, reason: 'binary', detail: 'binary frames are not part of the protocol' };
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (size > maxBytes) return { ok: false, reason: 'too_large', detail: `${size} bytes > ${maxBytes}` };
    let raw: unknown;
    try {
      raw = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
    } catch {
      return { ok: false, reason: 'not_json', detail: 'not valid JSON' };
    }
    if (!isRecord(raw)) return { ok: false, reason: 'not_object', detail: 'not a JSON object' };
    return { ok: true, msg: validate(raw) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.reason, detail: err.message };
    return { ok: false, reason: 'bad_field', detail: 'validation failed' };
  }
}

export function encodeMessage(msg: MeshMessage): string {
  return JSON.stringify(msg);
}
