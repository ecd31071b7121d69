// The payloads of coordinator → agent commands (CommandMessage.kind = the core's Action kind). The
// coordinator adds what an agent cannot know by itself — the master to follow, the vclock to catch
// up to, a time budget — and the agent validates every field by hand before touching Tarantool.
import type { JsonObject, JsonValue } from './mesh-protocol.js';

export interface MasterRef {
  pod: string;
  uuid: string;
  /** host:port */
  address: string;
}

interface Base {
  replicaset: string;
  /** The pod that must execute it (checked against the receiving agent). */
  pod: string;
  reason: string;
  /** The replica set's persisted master (null = none recorded, or its address is unknown). */
  master: MasterRef | null;
  /** How long the agent may work on it; the coordinator waits a little longer for the ack. */
  timeoutMs: number;
}

export type ReplicationKind = 'bootstrapMaster' | 'joinReplica' | 'reconfigure' | 'promote' | 'rebootstrap' | 'rejoinAsReplica' | 'restartReplication';

export type InstanceCommand =
  | (Base & { kind: ReplicationKind; replication: string[]; synchroQuorum: number })
  | (Base & { kind: 'fence' })
  | (Base & { kind: 'waitCatchUp'; source: string; vclock: Record<string, number> })
  | (Base & { kind: 'expel'; expelledPod: string; expelledUuid: string })
  | (Base & { kind: 'bootstrapBuckets' })
  | (Base & { kind: 'findMasters' });

export type InstanceCommandKind = InstanceCommand['kind'];

const REPLICATION_KINDS: readonly string[] = ['bootstrapMaster', 'joinReplica', 'reconfigure', 'promote', 'rebootstrap', 'rejoinAsReplica', 'restartReplication'];
export const INSTANCE_COMMAND_KINDS: readonly string[] = [...REPLICATION_KINDS, 'fence', 'waitCatchUp', 'expel', 'bootstrapBuckets', 'findMasters'];

export const isInstanceCommandKind = (kind: string): kind is InstanceCommandKind => INSTANCE_COMMAND_KINDS.includes(kind);

/** A payload that does not validate: refused, never acted on. */
export class PayloadError extends Error {
  constructor(kind: string, problem: string) {
    super(`invalid ${kind} command: ${problem}`);
    this.name = 'PayloadError';
  }
}

const POD = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/;
const VCLOCK_ID = /^(?:[0-9]|[12][0-9]|3[01])$/;
const MAX_TIMEOUT_MS = 10 * 60_000;
const MAX_MEMBERS = 32; // Tarantool's VCLOCK_MAX

export function encodeInstanceCommand(cmd: InstanceCommand): { kind: InstanceCommandKind; payload: JsonObject } {
  const { kind, ...rest } = cmd;
  return { kind, payload: JSON.parse(JSON.stringify(rest)) as JsonObject };
}

/** Validates `payload` for `kind`; throws PayloadError with the first problem. */
export function decodeInstanceCommand(kind: string, payload: JsonObject): InstanceCommand {
  const bad = (problem: string): never => {
    throw new PayloadError(kind, problem);
  };
  if (!isInstanceCommandKind(kind)) return bad(`unknown kind (expected one of ${INSTANCE_COMMAND_KINDS.join(', ')})`);
  const get = (key: string): JsonValue | undefined => (Object.prototype.hasOwnProperty.call(payload, key) ? payload[key] : undefined);
  const text = (key: string, pattern?: RegExp, max = 253): string => {
    const v = get(key);
    if (typeof v !== 'string' || v.length === 0 || v.length > max || (pattern && !pattern.test(v))) return bad(`"${key}" must be ${pattern ? `a string matching ${pattern.source}` : 'a non-empty string'}`);
    return v;
  };
  const integer = (key: string, min: number, max: number): number => {
    const v = get(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) return bad(`"${key}" must be an integer between ${min} and ${max}`);
    return v;
  };
  const replicaset = text('replicaset', POD);
  const masterRaw = get('master');
  let master: MasterRef | null = null;
  if (masterRaw !== null) {
    if (typeof masterRaw !== 'object' || Array.isArray(masterRaw) || masterRaw === undefined) return bad('"master" must be an object or null');
    const m = masterRaw as Record<string, JsonValue>;
    const { pod, uuid, address } = m;
    if (typeof pod !== 'string' || !POD.test(pod)) bad('"master.pod" must be a pod name');
    if (typeof uuid !== 'string' || !UUID.test(uuid)) bad('"master.uuid" must be a UUID');
    if (typeof address !== 'string' || !ADDRESS.test(address)) bad('"master.address" must be host:port');
    master = { pod: pod as string, uuid: uuid as string, address: address as string };
  }
  const base: Base = {
    replicaset,
    pod: text('pod', POD),
    reason: text('reason', undefined, 4096),
    master,
    timeoutMs: integer('timeoutMs', 1, MAX_TIMEOUT_MS),
  };
  if (REPLICATION_KINDS.includes(kind)) {
    const list = get('replication');
    if (!Array.isArray(list) || list.length > MAX_MEMBERS) return bad(`"replication" must be an array of at most ${MAX_MEMBERS} addresses`);
    const replication = list.map((a) => (typeof a === 'string' && ADDRESS.test(a) ? a : bad('"replication" entries must be host:port')));
    return { ...base, kind: kind as ReplicationKind, replication, synchroQuorum: integer('synchroQuorum', 1, MAX_MEMBERS) };
  }
  if (kind === 'fence' || kind === 'bootstrapBuckets' || kind === 'findMasters') return { ...base, kind };
  if (kind === 'waitCatchUp') {
    const raw = get('vclock');
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('"vclock" must be an object');
    const vclock: Record<string, number> = {};
    for (const [id, lsn] of Object.entries(raw)) {
      if (!VCLOCK_ID.test(id) || typeof lsn !== 'number' || !Number.isSafeInteger(lsn) || lsn < 0) bad('"vclock" must map replica ids 0..31 to LSNs');
      vclock[id] = lsn as number;
    }
    return { ...base, kind, source: text('source', POD), vclock };
  }
  return { ...base, kind: 'expel', expelledPod: text('expelledPod', POD), expelledUuid: text('expelledUuid', UUID) };
}
