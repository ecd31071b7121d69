// The local instance as shoal.lua's status() reports it, decoded into checked types. The console
// hands back `unknown`; everything the agent decides on passes through here first.
import { ConsoleProtocolError } from '../console/errors.js';
import type { Vclock } from '../tarantool/vclock.js';
import type { BucketCounts, RouterView, VshardReport } from '../decide/sharding.js';

/** Where shoal.cfg() is: loaded (cfg not called yet) → waiting → configuring → configured; exiting after move_aside_and_exit. */
export type Phase = 'loaded' | 'waiting' | 'configuring' | 'configured' | 'exiting' | 'failed';
export type Role = 'master' | 'replica' | 'fenced' | 'unconfigured';

export interface Upstream {
  status: string;
  lag?: number;
  idle?: number;
  message?: string;
  /** user@host:port, password removed */
  peer?: string;
}

export interface Downstream {
  status: string;
  idle?: number;
  lag?: number;
  message?: string;
  vclock?: Vclock;
}

export interface PeerState {
  id: number;
  uuid: string;
  lsn?: number;
  upstream?: Upstream;
  downstream?: Downstream;
}

export interface Promotion {
  id: number;
  state: 'running' | 'done' | 'failed';
  /** Why it failed; while running on 3.x, the last refusal of box.ctl.promote (retried). */
  error?: string;
  /** box.ctl.promote calls retried so far (3.x). */
  attempts?: number;
}

/** box.info.synchro on 3.x: who owns the synchronous queue, in which term, and what waits in it. */
export interface Synchro {
  /** box.info.id of the owner; 0 = nobody claimed it (is_sync writes fail with SYNC_QUEUE_UNCLAIMED). */
  owner: number;
  term: number;
  len: number;
  quorum?: number;
}

/** What the agent keeps inside the Tarantool process (shoal.note) so that an agent restart finds it. */
export interface AgentNotes {
  fenced?: boolean;
  masterUuid?: string;
}

export interface InstanceState {
  phase: Phase;
  /** require('tarantool').version, e.g. 3.8.0-0-gdce7be8a79 (absent from an older shoal.lua). */
  version?: string;
  /** How the application starts: `lua` (require('shoal').cfg) or `native` (a Tarantool 3 config, SPEC §4a). */
  style?: 'lua' | 'native';
  /** box.info.name (3.x, once configured): the pod's name in the native style. */
  name?: string;
  configured: boolean;
  pid: number;
  /** configure() calls so far in this process, and the last one that failed. */
  attempt: number;
  lastError?: { attempt: number; message: string };
  promotion?: Promotion;
  notes: AgentNotes;
  /** Set once configured. */
  id?: number;
  uuid?: string;
  replicasetUuid?: string;
  ro?: boolean;
  /** box.info.ro_reason: config (read_only), synchro (another instance owns the queue), orphan… */
  roReason?: string;
  status?: string;
  listen?: string;
  synchroQuorum?: number;
  /** 3.x only. */
  synchro?: Synchro;
  vclock: Vclock;
  replication: PeerState[];
  /** box.cfg.replication as host:port (credentials stripped by shoal.lua); set once configured. */
  replicationUris?: string[];
  /** Instance UUIDs registered in box.space._cluster; set once configured. */
  clusterUuids?: string[];
  /** 3.x native style: sharding.roles of the user's config as written (SPEC §4b); absent in the Lua style. */
  shardingRoles?: string[];
  /** vshard on this instance once configured (storage bucket counts, a router's view). */
  vshard?: VshardReport;
  /** Derived by the agent: see readiness.ts. */
  role: Role;
  /** Seconds behind the master (0 on the master, undefined when unknown). */
  lag?: number;
}

export interface OfflineVclock {
  vclock: Vclock;
  empty: boolean;
  snapshot?: string;
  xlogsRead: number;
  warnings: string[];
  dirs: { work: string; memtx: string; wal: string; vinyl: string };
  /** The Tarantool version that will recover these files (absent from an older shoal.lua). */
  tarantool?: string;
  /** A synchronous space with rows in the newest snapshot. */
  syncSnapshotSpace?: string;
  /** Per instance id, the first lsn of synchronous rows no CONFIRM or ROLLBACK covers. */
  unconfirmed: Vclock;
  /** This instance's id in the files' _cluster. */
  ownId?: number;
}

export interface MovedDir {
  from: string;
  to: string;
  files: number;
}

const PHASES: readonly Phase[] = ['loaded', 'waiting', 'configuring', 'configured', 'exiting', 'failed'];

type Rec = Record<string, unknown>;

function rec(v: unknown, what: string): Rec {
  // An empty Lua table is encoded as [] whatever it was meant to be.
  if (Array.isArray(v) && v.length === 0) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConsoleProtocolError(`${what}: expected a table, got ${JSON.stringify(v)}`);
  return v as Rec;
}
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
// Lua tables that happen to be empty arrive as {} or []; both mean "none".
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function decodeVclock(v: unknown): Vclock {
  const out: Record<string, number> = {};
  if (v === null || typeof v !== 'object') return out;
  for (const [k, lsn] of Object.entries(v as Rec)) {
    const n = num(lsn);
    if (n !== undefined && k !== '0') out[k] = n;
  }
  return out;
}

function decodeUpstream(v: unknown): Upstream | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const r = v as Rec;
  return { status: str(r['status']) ?? 'unknown', lag: num(r['lag']), idle: num(r['idle']), message: str(r['message']), peer: str(r['peer']) };
}

function decodeDownstream(v: unknown): Downstream | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const r = v as Rec;
  return {
    status: str(r['status']) ?? 'unknown',
    idle: num(r['idle']),
    lag: num(r['lag']),
    message: str(r['message']),
    vclock: r['vclock'] === undefined ? undefined : decodeVclock(r['vclock']),
  };
}

function decodeSynchro(v: unknown): Synchro | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const r = v as Rec;
  const quorum = num(r['quorum']);
  return { owner: num(r['owner']) ?? 0, term: num(r['term']) ?? 0, len: num(r['len']) ?? 0, ...(quorum !== undefined ? { quorum } : {}) };
}

const count = (r: Rec, k: string): number => Math.max(0, Math.trunc(num(r[k]) ?? 0));

function decodeBuckets(v: unknown): BucketCounts | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const r = v as Rec;
  return { active: count(r, 'active'), sending: count(r, 'sending'), receiving: count(r, 'receiving'), garbage: count(r, 'garbage'), pinned: count(r, 'pinned'), total: count(r, 'total') };
}

function decodeRouter(v: unknown): RouterView | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const r = v as Rec;
  const masters: Record<string, string | null> = {};
  for (const [name, m] of Object.entries(rec(r['masters'] ?? {}, 'vshard.router.masters'))) masters[name] = str(m) ?? null;
  return { masters, unknown: count(r, 'unknown'), unreachable: count(r, 'unreachable'), availableRw: count(r, 'available_rw') };
}

/** shoal.status().vshard: absent where vshard is not configured. */
function decodeVshard(v: unknown): VshardReport | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const r = v as Rec;
  const storage = decodeBuckets(r['storage']);
  const router = decodeRouter(r['router']);
  if (!storage && !router) return undefined;
  return { ...(storage ? { storage } : {}), ...(router ? { router } : {}) };
}

/** shoal.status() → InstanceState without the derived role/lag (the caller adds them). */
export function decodeStatus(v: unknown): Omit<InstanceState, 'role' | 'lag'> {
  const r = rec(v, 'shoal.status()');
  const phase = str(r['phase']);
  if (!phase || !PHASES.includes(phase as Phase)) throw new ConsoleProtocolError(`shoal.status(): unknown phase ${JSON.stringify(r['phase'])}`);
  const lastError = r['last_error'] === undefined ? undefined : rec(r['last_error'], 'last_error');
  const promotion = r['promotion'] === undefined ? undefined : rec(r['promotion'], 'promotion');
  const notes = r['notes'] === undefined ? {} : rec(r['notes'], 'notes');
  return {
    phase: phase as Phase,
    version: str(r['version']),
    style: r['style'] === 'native' ? 'native' : 'lua',
    name: str(r['name']),
    configured: r['configured'] === true,
    pid: num(r['pid']) ?? 0,
    attempt: num(r['attempt']) ?? 0,
    lastError: lastError && { attempt: num(lastError['attempt']) ?? 0, message: str(lastError['message']) ?? '' },
    promotion: promotion && {
      id: num(promotion['id']) ?? 0,
      state: (str(promotion['state']) ?? 'failed') as Promotion['state'],
      error: str(promotion['error']),
      attempts: num(promotion['attempts']),
    },
    notes: { fenced: bool(notes['fenced']), masterUuid: str(notes['master_uuid']) || undefined },
    id: num(r['id']),
    uuid: str(r['uuid']),
    replicasetUuid: str(r['replicaset_uuid']),
    ro: bool(r['ro']),
    roReason: str(r['ro_reason']),
    synchro: decodeSynchro(r['synchro']),
    status: str(r['status']),
    listen: str(r['listen']) ?? (num(r['listen']) === undefined ? undefined : String(r['listen'])),
    synchroQuorum: num(r['synchro_quorum']),
    vclock: decodeVclock(r['vclock']),
    ...(r['sharding_roles'] === undefined ? (r['style'] === 'native' ? { shardingRoles: [] } : {}) : { shardingRoles: list(r['sharding_roles']).map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) }),
    ...(r['vshard'] === undefined ? {} : { vshard: decodeVshard(r['vshard']) }),
    replicationUris: r['cfg_replication'] === undefined ? undefined : list(r['cfg_replication']).map(String),
    clusterUuids: r['cluster_uuids'] === undefined ? undefined : list(r['cluster_uuids']).map(String),
    replication: list(r['replication']).map((p) => {
      const pr = rec(p, 'replication entry');
      return {
        id: num(pr['id']) ?? 0,
        uuid: str(pr['uuid']) ?? '',
        lsn: num(pr['lsn']),
        upstream: decodeUpstream(pr['upstream']),
        downstream: decodeDownstream(pr['downstream']),
      };
    }),
  };
}

export function decodeOfflineVclock(v: unknown): OfflineVclock {
  const r = rec(v, 'shoal.offline_vclock()');
  const d = rec(r['dirs'], 'dirs');
  return {
    vclock: decodeVclock(r['vclock']),
    empty: r['empty'] === true,
    snapshot: str(r['snapshot']),
    xlogsRead: num(r['xlogs_read']) ?? 0,
    warnings: list(r['warnings']).map(String),
    dirs: { work: str(d['work']) ?? '', memtx: str(d['memtx']) ?? '', wal: str(d['wal']) ?? '', vinyl: str(d['vinyl']) ?? '' },
    tarantool: str(r['tarantool']),
    syncSnapshotSpace: str(r['sync_snapshot_space']),
    unconfirmed: decodeVclock(r['unconfirmed']),
    ownId: num(r['own_id']),
  };
}

export function decodeMoved(v: unknown): MovedDir[] {
  return list(v).map((m) => {
    const r = rec(m, 'moved entry');
    return { from: str(r['from']) ?? '', to: str(r['to']) ?? '', files: num(r['files']) ?? 0 };
  });
}
