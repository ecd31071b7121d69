// LocalInstance: the agent's hands on its own Tarantool, through the console and shoal.lua.
// Every operation is bounded (timeoutMs) and abortable (signal). Long steps (box.cfg, clearing the
// synchronous queue) run in Tarantool's own fibers and are polled, so the single console
// connection is never held for seconds and /status keeps answering meanwhile. Calls fail fast
// (TarantoolGoneError at once) when the console cannot be reached: only waitForConsole waits for it.
import type { Logger } from '../../common/log.js';
import type { ConsoleClient } from '../console/client.js';
import type { JsonValue } from '../console/envelope.js';
import { TarantoolGoneError } from '../console/errors.js';
import { deadline, pause, type Bounded, type Deadline } from './deadline.js';
import { InstanceError, InstanceTimeoutError } from './errors.js';
import type { InstanceIdentity } from './identity.js';
import { lagOf, roleOf } from './readiness.js';
import {
  decodeMoved,
  decodeOfflineVclock,
  decodeStatus,
  decodeVclock,
  type InstanceState,
  type MovedDir,
  type OfflineVclock,
} from './state.js';
import { checkCredentials, replicationUri, type ReplicationCredentials } from './uri.js';
import { parseUserConfig, renderNativeConfig, type NativeView, type ShardedView } from './native-config.js';
import { covers, formatVclock, type Vclock } from '../tarantool/vclock.js';

export type { Bounded } from './deadline.js';

/** The master an instance replicates from: its UUID (for readiness and lag) and its host:port. */
export interface MasterRef {
  uuid: string;
  address: string;
  /** Its pod: the leader's instance name in the 3.x native style's config. */
  pod?: string;
}

export interface BootstrapOptions extends Bounded {
  role: 'master' | 'replica';
  /** Required for a replica: the first box.cfg joins (or catches up from) this master only. */
  master?: MasterRef;
  /** host:port of the members to replicate from afterwards (set by a reconfigure right after box.cfg). */
  peers?: string[];
  /** Default: false for a master, true for a replica. */
  readOnly?: boolean;
  synchroQuorum?: number;
  synchroTimeoutS?: number;
  /** How long a replica's first box.cfg waits for its master (Tarantool exits if it cannot reach it). Default 10. */
  connectTimeoutS?: number;
  /** How long box.cfg waits for a replica with data to catch up (replication_sync_timeout). Default 30. */
  syncTimeoutS?: number;
  /** Further agent-owned box options (win over the application's). */
  boxOptions?: Record<string, JsonValue>;
}

export interface ReconfigureOptions extends Bounded {
  /** host:port of every member to replicate from (credentials are added here). */
  peers?: string[];
  /** The master this instance follows; null forgets it (e.g. on the master itself). */
  master?: MasterRef | null;
  readOnly?: boolean;
  synchroQuorum?: number;
  synchroTimeoutS?: number;
  /** replication_connect_timeout with the new peers. Default 1 s: quorum is 0, nobody waits on it. */
  connectTimeoutS?: number;
}

export interface PromoteOptions extends Bounded {
  synchroQuorum?: number;
}

export interface RebootstrapOptions extends BootstrapOptions {
  /** Why, for the log and the note left in the moved-aside directory. */
  reason: string;
}

export interface RebootstrapResult {
  moved: MovedDir[];
  /**
   * true: the instance was running, so shoal.lua moved the files and exited the process; once it
   * is back (the container restarts) and unconfigured, bootstrap() it as a replica.
   * false: it was not configured yet; it has been bootstrapped already and `state` is set.
   */
  restartRequired: boolean;
  state?: InstanceState;
}

export interface TopologyDelivery {
  version: number;
  hooks: number;
  errors: string[];
}

export interface LocalInstanceOptions {
  console: ConsoleClient;
  identity: InstanceIdentity;
  /** The replication user; may also be set later with setCredentials (e.g. derived from the mesh secret). */
  credentials?: ReplicationCredentials;
  logger: Logger;
  /** Bound of one console call inside an operation. Default 5 s. */
  callTimeoutMs?: number;
  /**
   * A second connection to the same console for what must never queue behind reads (/status,
   * /metrics) or long operations: fencing and the watchdog lease. Default: the main console.
   */
  urgentConsole?: ConsoleClient;
}

const STATUS = "return require('shoal').status()";
const FENCE_NOW = "return require('shoal').fence_now()";
const POLL_MS = 10;
const VCLOCK_POLL_MS = 5;

export class LocalInstance {
  readonly identity: InstanceIdentity;
  private credentials: ReplicationCredentials | undefined;
  private readonly console: ConsoleClient;
  private readonly urgentConsole: ConsoleClient;
  private readonly log: Logger;
  private readonly callTimeoutMs: number;
  /** 3.x native style: the user's config and what the agent has decided, per Tarantool process. */
  private native: { pid: number; user: Record<string, JsonValue>; view: NativeView; follow: MasterRef | null; writable: boolean } | undefined;
  /** The application's style, as the last status() said: fixed by the pod's spec, so a restart keeps it. */
  private style: 'lua' | 'native' | undefined;
  /** A sharded cluster's topology for the native config (SPEC §4b); kept across Tarantool restarts. */
  private sharding: ShardedView | undefined;

  constructor(opts: LocalInstanceOptions) {
    this.console = opts.console;
    this.urgentConsole = opts.urgentConsole ?? opts.console;
    this.identity = opts.identity;
    this.log = opts.logger;
    this.callTimeoutMs = opts.callTimeoutMs ?? 5_000;
    if (opts.credentials) this.setCredentials(opts.credentials);
  }

  setCredentials(c: ReplicationCredentials): void {
    checkCredentials(c);
    this.credentials = c;
  }

  /** Waits until Tarantool has called shoal.cfg() and its console answers (TarantoolGoneError at the bound). */
  async waitForConsole(o: Bounded = {}): Promise<void> {
    await this.console.connect({ timeoutMs: o.timeoutMs ?? 60_000, signal: o.signal });
  }

  /** The instance's state, before or after box.cfg. */
  async state(o: Bounded = {}): Promise<InstanceState> {
    const raw = await this.console.eval(STATUS, [], { timeoutMs: o.timeoutMs ?? this.callTimeoutMs, signal: o.signal, failFast: true });
    const s = decodeStatus(raw);
    this.style = s.style ?? 'lua';
    return { ...s, role: roleOf(s), lag: lagOf(s) };
  }

  /** The data directory's vclock read from its files, without box.cfg (only meaningful before it). */
  async offlineVclock(o: Bounded = {}): Promise<OfflineVclock> {
    // Reading the xlogs since the last snapshot can take a while on a big instance.
    const raw = await this.console.eval("return require('shoal').offline_vclock(...)", [this.identity.instanceUuid], { timeoutMs: o.timeoutMs ?? 60_000, signal: o.signal, failFast: true });
    return decodeOfflineVclock(raw);
  }

  /** State plus, when not configured yet, the offline vclock: what a coordinator decides a start from. */
  async inspect(o: Bounded = {}): Promise<{ state: InstanceState; offline?: OfflineVclock }> {
    const state = await this.state(o);
    if (state.phase !== 'waiting') return { state };
    return { state, offline: await this.offlineVclock(o) };
  }

  /**
   * The first box.cfg of this process: a fresh bootstrap, or recovery when the data directory has
   * data (same identity, so it must match). A master starts alone (and creates the replication
   * user); a replica joins or catches up from `master` only. `peers` are applied right after.
   */
  async bootstrap(o: BootstrapOptions): Promise<InstanceState> {
    const creds = this.requireCredentials();
    if (o.role === 'replica' && !o.master) {
      throw new InstanceError('a replica needs a master to bootstrap from', 'pass master: {uuid, address}');
    }
    const connectS = o.connectTimeoutS ?? 10;
    const syncS = o.syncTimeoutS ?? 30;
    const d = deadline(`bootstrap as ${o.role}`, o, (connectS + syncS) * 1000 + 30_000);
    const started = Date.now();
    try {
      const before = await this.state(this.bounded(d));
      if (before.phase !== 'waiting') {
        throw new InstanceError(
          `cannot bootstrap: the instance is ${before.phase}, not waiting for its configuration`,
          before.phase === 'configured' ? 'use reconfigure() on a configured instance' : 'wait until the application calls require("shoal").cfg()',
        );
      }
      if (before.style === 'native') {
        await this.bootstrapNative(before, o, connectS, syncS, d);
        return await this.awaitConfigured(o.role, started, d, o.peers);
      }
      const box: Record<string, JsonValue> = {
        instance_uuid: this.identity.instanceUuid,
        replicaset_uuid: this.identity.replicasetUuid,
        listen: this.identity.listen,
        read_only: o.readOnly ?? o.role === 'replica',
        // A master starts alone so it is the bootstrap leader; a replica must reach its master
        // (quorum 1), or it could bootstrap a history of its own.
        replication: o.role === 'master' || !o.master ? [] : [replicationUri(creds, o.master.address)],
        replication_connect_quorum: o.role === 'master' ? 0 : 1,
        replication_connect_timeout: connectS,
        replication_sync_timeout: syncS,
        ...(o.synchroQuorum !== undefined ? { replication_synchro_quorum: o.synchroQuorum } : {}),
        ...(o.synchroTimeoutS !== undefined ? { replication_synchro_timeout: o.synchroTimeoutS } : {}),
        ...o.boxOptions,
      };
      const shoalOpts: Record<string, JsonValue> =
        o.role === 'master' ? { replication_user: { name: creds.user, password: creds.password } } : {};
      const notes: Record<string, JsonValue> = { fenced: false, master_uuid: o.role === 'replica' ? (o.master?.uuid ?? '') : '' };
      const attempt = await this.eval(
        'local box_opts, shoal_opts, notes = ... local s = require("shoal") s.note(notes) return s.configure(box_opts, shoal_opts)',
        [box, shoalOpts, notes],
        d,
      );
      return await this.awaitConfigured(o.role, started, d, o.peers, typeof attempt === "number" ? attempt : undefined);
    } finally {
      d.done();
    }
  }

  /** Polls until the configure `attempt` (default: the latest) is done; then applies `peers`. */
  private async awaitConfigured(role: string, started: number, d: Deadline, peers?: string[], attempt?: number): Promise<InstanceState> {
    for (;;) {
      const s = await this.state(this.bounded(d));
      if (s.lastError && s.lastError.attempt === (attempt ?? s.attempt)) {
        throw new InstanceError(
          `${s.style === 'native' ? 'the config module' : 'box.cfg'} as ${role} failed: ${s.lastError.message}`,
          s.configured ? 'the instance is up; retry the step that failed' : 'fix the options and call bootstrap again',
        );
      }
      if (s.phase === 'configured') {
        this.log.info(
          { role, id: s.id, uuid: s.uuid, name: s.name, vclock: s.vclock, status: s.status, style: s.style, ms: Date.now() - started },
          'instance configured',
        );
        break;
      }
      await pause(POLL_MS, d.signal);
    }
    if (peers) return await this.reconfigure({ peers, signal: d.signal, timeoutMs: d.remaining() });
    return await this.state(this.bounded(d));
  }

  /**
   * 3.x native style: the first config, with this instance as its replica set's leader (a master
   * starting writable) or naming the master it joins; the config module then runs box.cfg.
   */
  private async bootstrapNative(before: InstanceState, o: BootstrapOptions, connectS: number, syncS: number, d: Deadline): Promise<void> {
    const creds = this.requireCredentials();
    const n = await this.nativeState(before, d);
    n.writable = !(o.readOnly ?? o.role === 'replica');
    n.follow = o.role === 'replica' && o.master ? o.master : null;
    Object.assign(n.view, {
      bootstrapStrategy: 'legacy',
      peers: o.role === 'master' || !o.master ? [] : [o.master.address],
      connectTimeoutS: connectS,
      syncTimeoutS: syncS,
      ...(o.synchroQuorum !== undefined ? { synchroQuorum: o.synchroQuorum } : {}),
      ...(o.synchroTimeoutS !== undefined ? { synchroTimeoutS: o.synchroTimeoutS } : {}),
    });
    const shoalOpts: Record<string, JsonValue> =
      o.role === 'master' ? { replication_user: { name: creds.user, password: creds.password } } : {};
    const notes: Record<string, JsonValue> = { fenced: false, master_uuid: o.role === 'replica' ? (o.master?.uuid ?? '') : '' };
    await this.eval(
      'local doc, shoal_opts, notes = ... local s = require("shoal") s.note(notes) return s.configure_native(doc, shoal_opts)',
      [this.renderNative(n), shoalOpts, notes],
      d,
    );
  }

  /** The native style's state for the running process: the user's config is read once per pid. */
  private async nativeState(s: InstanceState, d: Deadline): Promise<NonNullable<LocalInstance['native']>> {
    if (this.native && this.native.pid === s.pid) return this.native;
    const text = await this.eval("return require('shoal').user_config()", [], d);
    const { config, problems } = parseUserConfig(typeof text === 'string' ? text : '');
    if (problems.length > 0) {
      throw new InstanceError(
        `the Tarantool config (SHOAL_USER_CONFIG) cannot run under Shoal: ${problems.join('; ')}`,
        'edit the config file (ConfigMap) the Tarantool container\'s TT_CONFIG named, then restart the pod',
      );
    }
    const id = this.identity;
    this.native = {
      pid: s.pid,
      user: config,
      follow: null,
      writable: false,
      view: {
        group: id.cluster,
        replicaset: id.replicaset,
        instance: id.pod,
        instanceUuid: id.instanceUuid,
        replicasetUuid: id.replicasetUuid,
        listen: id.listen,
        members: {},
        leader: null,
        peers: [],
        credentials: this.requireCredentials(),
      },
    };
    return this.native;
  }

  private renderNative(n: NonNullable<LocalInstance['native']>): Record<string, JsonValue> {
    const follow = n.follow?.pod;
    const members: Record<string, string> = { [n.view.instance]: this.identity.advertise };
    if (follow && n.follow) members[follow] = n.follow.address;
    const leader = n.writable ? n.view.instance : (follow ?? null);
    const sharding = this.sharding ? { sharding: this.sharding } : {};
    return renderNativeConfig(n.user, { ...n.view, members, leader, credentials: this.requireCredentials(), ...sharding });
  }

  /**
   * The sharded topology (SPEC §4b: this replica set's role, every storage replica set) the native
   * config lists from now on: a configured instance reloads at once, an unconfigured one gets it with
   * its first config. It holds no masters, so a leader change never reloads anyone for it. Only the
   * 3.x native style shards (its config module configures vshard): `false` from a Lua-style instance.
   */
  async setSharding(view: ShardedView | null, o: Bounded = {}): Promise<boolean> {
    const d = deadline('sharding topology', o, 30_000);
    try {
      const s = await this.state(this.bounded(d));
      if (s.style !== 'native') return false;
      // Its first config may already be rendered without it: hand it over once that is applied.
      if (s.phase === 'configuring') throw new InstanceError('the instance is being configured: the sharded topology follows once it is', 'retry shortly');
      this.sharding = view ?? undefined;
      if (s.phase === 'configured') {
        await this.applyNative(s, () => undefined, {}, d);
        this.log.info({ role: view?.role ?? null, storages: view?.storages.map((st) => st.name) ?? [] }, 'sharded topology applied (config reload)');
      }
      return true;
    } finally {
      d.done();
    }
  }

  /** Whether the application runs the 3.x native style; asks Tarantool only until a status() said. */
  private async isNative(d: Deadline): Promise<boolean> {
    return (this.style ?? (await this.state(this.bounded(d))).style) === 'native';
  }

  /** Native style, running: the new view through the config module's reload. */
  private async applyNative(s: InstanceState, change: (n: NonNullable<LocalInstance['native']>) => void, notes: Record<string, JsonValue>, d: Deadline): Promise<void> {
    const n = await this.nativeState(s, d);
    n.view.bootstrapStrategy = 'auto';
    change(n);
    await this.eval('local doc, notes = ... return require("shoal").apply_config(doc, notes)', [this.renderNative(n), notes], d);
  }

  /**
   * Runtime changes. New peers are applied with replication_connect_quorum = 0 and a short connect
   * timeout, so a down peer never makes this instance (least of all a master) orphan.
   */
  async reconfigure(o: ReconfigureOptions): Promise<InstanceState> {
    const d = deadline('reconfigure', o, 30_000);
    try {
      if (await this.isNative(d)) {
        const current = await this.state(this.bounded(d));
        const notes: Record<string, JsonValue> = {};
        if (o.readOnly !== undefined) notes['fenced'] = false;
        if (o.master !== undefined) notes['master_uuid'] = o.master?.uuid ?? '';
        await this.applyNative(
          current,
          (n) => {
            if (o.peers) {
              n.view.peers = o.peers;
              n.view.connectTimeoutS = o.connectTimeoutS ?? 1;
            }
            if (o.readOnly !== undefined) n.writable = !o.readOnly;
            if (o.master !== undefined) n.follow = o.master;
            if (o.synchroQuorum !== undefined) n.view.synchroQuorum = o.synchroQuorum;
            if (o.synchroTimeoutS !== undefined) n.view.synchroTimeoutS = o.synchroTimeoutS;
          },
          notes,
          d,
        );
        this.log.info({ peers: o.peers, readOnly: o.readOnly, synchroQuorum: o.synchroQuorum, master: o.master?.uuid }, 'instance reconfigured (config reload)');
        return await this.state(this.bounded(d));
      }
      // Quorum and timeout go first, in their own box.cfg: they must hold before the peers change.
      const first: Record<string, JsonValue> = {};
      const rest: Record<string, JsonValue> = {};
      const notes: Record<string, JsonValue> = {};
      if (o.peers) {
        const creds = this.requireCredentials();
        first['replication_connect_quorum'] = 0;
        first['replication_connect_timeout'] = o.connectTimeoutS ?? 1;
        rest['replication'] = o.peers.map((p) => replicationUri(creds, p));
      }
      if (o.readOnly !== undefined) {
        rest['read_only'] = o.readOnly;
        notes['fenced'] = false;
      }
      if (o.synchroQuorum !== undefined) rest['replication_synchro_quorum'] = o.synchroQuorum;
      if (o.synchroTimeoutS !== undefined) rest['replication_synchro_timeout'] = o.synchroTimeoutS;
      if (o.master !== undefined) notes['master_uuid'] = o.master?.uuid ?? '';
      await this.eval(
        'local first, rest, notes = ... if next(first) ~= nil then box.cfg(first) end if next(rest) ~= nil then box.cfg(rest) end require("shoal").note(notes) return true',
        [first, rest, notes],
        d,
      );
      this.log.info(
        { peers: o.peers, readOnly: o.readOnly, synchroQuorum: o.synchroQuorum, master: o.master?.uuid },
        'instance reconfigured',
      );
      return await this.state(this.bounded(d));
    } finally {
      d.done();
    }
  }

  /** read_only = true, remembered as "fenced" (role `fenced`) until unfence, promote or a read_only change. */
  async fence(o: Bounded = {}): Promise<InstanceState> {
    return this.setReadOnly(true, o);
  }

  async unfence(o: Bounded = {}): Promise<InstanceState> {
    return this.setReadOnly(false, o);
  }

  /**
   * Makes this instance the writable master: read_only = false, then it claims the synchronous
   * queue — box.ctl.promote() on 3.x (a new term; retried while its replicas connect), or
   * box.ctl.clear_synchro_queue() on 2.6 (a new master refuses writes until the old master's
   * pending synchronous transactions are cleared; that can take about two synchro timeouts).
   */
  async promote(o: PromoteOptions = {}): Promise<InstanceState> {
    const d = deadline('promote', o, 60_000);
    const started = Date.now();
    try {
      const opts: Record<string, JsonValue> = o.synchroQuorum !== undefined ? { replication_synchro_quorum: o.synchroQuorum } : {};
      if (await this.isNative(d)) {
        const current = await this.state(this.bounded(d));
        // The config names it leader first: a promote without it leaves the queue's new owner
        // read-only by config (TARANTOOL3.md).
        await this.applyNative(
          current,
          (n) => {
            n.writable = true;
            n.follow = null;
            if (o.synchroQuorum !== undefined) n.view.synchroQuorum = o.synchroQuorum;
          },
          { fenced: false, master_uuid: '' },
          d,
        );
      }
      const id = await this.eval(
        'local s = require("shoal") s.note({fenced = false, master_uuid = ""}) return s.promote(...)',
        [opts],
        d,
      );
      for (;;) {
        const s = await this.state(this.bounded(d));
        if (s.promotion && s.promotion.id === id && s.promotion.state !== 'running') {
          if (s.promotion.state === 'failed') {
            throw new InstanceError(`promotion failed to claim the synchronous queue: ${s.promotion.error ?? 'unknown error'}`);
          }
          this.log.info({ id: s.id, vclock: s.vclock, ms: Date.now() - started }, 'instance promoted');
          return s;
        }
        await pause(POLL_MS, d.signal);
      }
    } finally {
      d.done();
    }
  }

  /** Resolves with the vclock once it covers `target`; InstanceTimeoutError (with the last vclock) at the bound. */
  async waitForVclock(target: Vclock, timeoutMs: number, signal?: AbortSignal): Promise<Vclock> {
    const op = `waiting for vclock ${formatVclock(target)}`;
    const d = deadline(op, { timeoutMs, signal }, timeoutMs);
    let current: Vclock = {};
    try {
      for (;;) {
        current = decodeVclock(await this.eval("return require('shoal').vclock()", [], d));
        if (covers(current, target)) return current;
        await pause(VCLOCK_POLL_MS, d.signal);
      }
    } catch (err) {
      if (err instanceof InstanceTimeoutError) throw new InstanceTimeoutError(op, timeoutMs, `last seen ${formatVclock(current)}`);
      throw err;
    } finally {
      d.done();
    }
  }

  /** Before box.cfg only: moves the data files into <dir>/shoal-diverged-<time>/ (nothing is deleted). */
  async moveDataAside(reason: string, o: Bounded = {}): Promise<MovedDir[]> {
    const d = deadline('move the data aside', o, 30_000);
    try {
      const moved = decodeMoved(await this.eval("return require('shoal').move_data_aside(...)", [reason], d));
      this.log.warn({ moved, reason }, 'data directory moved aside');
      return moved;
    } finally {
      d.done();
    }
  }

  /**
   * Starts over as an empty replica with the same instance_uuid, keeping the old data aside
   * (a diverged old master: its own vclock component is ahead of what the master has of it).
   * Before box.cfg this moves the files and bootstraps at once; on a running instance box.cfg
   * cannot run again, so shoal.lua moves the files and exits, and the caller bootstraps the
   * restarted, empty instance (restartRequired).
   */
  async rebootstrap(o: RebootstrapOptions): Promise<RebootstrapResult> {
    if (o.role !== 'replica' || !o.master) {
      throw new InstanceError('rebootstrap makes a replica of the current master', 'pass role: "replica" and master');
    }
    const d = deadline('rebootstrap', o, 120_000);
    try {
      const s = await this.state(this.bounded(d));
      if (s.phase === 'waiting') {
        const moved = await this.moveDataAside(o.reason, { signal: d.signal, timeoutMs: d.remaining() });
        const state = await this.bootstrap({ ...o, signal: d.signal, timeoutMs: d.remaining() });
        return { moved, restartRequired: false, state };
      }
      if (s.phase !== 'configured') throw new InstanceError(`cannot rebootstrap while the instance is ${s.phase}`);
      const moved = decodeMoved(await this.eval("return require('shoal').move_aside_and_exit(...)", [o.reason], d));
      this.log.warn({ moved, reason: o.reason, pid: s.pid }, 'data moved aside; Tarantool exits to restart empty');
      await this.waitForExit(s.pid, d);
      return { moved, restartRequired: true };
    } finally {
      d.done();
    }
  }

  /**
   * On a router: vshard.router.bootstrap() (SPEC §4b). `found`: the cluster already had buckets
   * (vshard's NON_EMPTY), which is the outcome wanted, not an error.
   */
  async bootstrapBuckets(o: Bounded = {}): Promise<{ found: boolean }> {
    const d = deadline('bucket bootstrap', o, 30_000);
    try {
      const timeoutS = Math.max(1, Math.floor(d.remaining() / 1000) - 1);
      const r = (await this.eval("return require('shoal').bootstrap_buckets(...)", [timeoutS], d)) as { found?: unknown } | null;
      const found = r?.found === true;
      this.log.info({ found }, found ? 'buckets were already bootstrapped' : 'buckets bootstrapped');
      return { found };
    } finally {
      d.done();
    }
  }

  /**
   * On a router: vshard.router.master_search_wakeup() (SPEC §4b) — the master search runs now
   * instead of at its next poll (vshard polls every 5 s while it believes every master known).
   */
  async findMasters(o: Bounded = {}): Promise<void> {
    const d = deadline('master search wakeup', o, 5_000);
    try {
      await this.eval("return require('shoal').find_masters()", [], d);
    } finally {
      d.done();
    }
  }

  /** Hands the cluster topology to the application's on_topology hooks (each runs in pcall). */
  async topology(topology: JsonValue, o: Bounded = {}): Promise<TopologyDelivery> {
    const d = deadline('topology delivery', o, 10_000);
    try {
      const r = (await this.eval("return require('shoal').topology(...)", [topology], d)) as Record<string, unknown> | null;
      return {
        version: typeof r?.['version'] === 'number' ? r['version'] : 0,
        hooks: typeof r?.['hooks'] === 'number' ? r['hooks'] : 0,
        errors: Array.isArray(r?.['errors']) ? r['errors'].map(String) : [],
      };
    } finally {
      d.done();
    }
  }

  /**
   * On the master: deletes an expelled instance from box.space._cluster (replicated to the others).
   * Resolves with whether a row was there to delete.
   */
  async expel(uuid: string, o: Bounded = {}): Promise<{ deleted: boolean; id?: number }> {
    const d = deadline(`expel ${uuid}`, o, 10_000);
    try {
      const r = (await this.eval("return require('shoal').expel(...)", [uuid], d)) as Record<string, unknown> | null;
      const deleted = r?.['deleted'] === true;
      const id = typeof r?.['id'] === 'number' ? r['id'] : undefined;
      if (deleted) this.log.warn({ uuid, id }, 'expelled an instance from box.space._cluster');
      return id === undefined ? { deleted } : { deleted, id };
    } finally {
      d.done();
    }
  }

  /**
   * Arms shoal.lua's watchdog lease: a writable instance whose lease is not renewed (renewWatchdog)
   * for `seconds` makes itself read-only. null disarms. Per Tarantool process; arming again changes
   * only the length, never extends the lease.
   */
  async armWatchdog(seconds: number | null, o: Bounded = {}): Promise<void> {
    const d = deadline('arm the watchdog', o, 5_000);
    try {
      await this.eval("return require('shoal').arm_watchdog(...)", [seconds], d);
    } finally {
      d.done();
    }
  }

  /**
   * Extends the watchdog lease by its armed length. Only the self-fencer calls it, while this agent
   * holds a mesh majority that also hears it. Resolves to the lease length in seconds (null: not armed).
   */
  async renewWatchdog(o: Bounded = {}): Promise<number | null> {
    const d = deadline('renew the watchdog', o, 1_000);
    try {
      const r = await this.urgentConsole.eval("return require('shoal').renew_watchdog()", [], this.bounded(d));
      return typeof r === 'number' ? r : null;
    } finally {
      d.done();
    }
  }

  /** Creates (or fixes the password of) the replication user with its grant; on a writable instance. */
  async ensureReplicationUser(o: Bounded = {}): Promise<void> {
    const creds = this.requireCredentials();
    const d = deadline('ensure the replication user', o, 10_000);
    try {
      await this.eval("return require('shoal').ensure_replication_user(...)", [creds.user, creds.password], d);
    } finally {
      d.done();
    }
  }

  private async setReadOnly(readOnly: boolean, o: Bounded): Promise<InstanceState> {
    const d = deadline(readOnly ? 'fence' : 'unfence', o, 10_000);
    try {
      // Read-only at once, on the connection nothing else queues on; the native config catches up below.
      if (readOnly) await this.urgentConsole.eval(FENCE_NOW, [], this.bounded(d));
      const current = (await this.isNative(d)) ? await this.state(this.bounded(d)) : undefined;
      if (current?.phase === 'configured') {
        await this.applyNative(current, (n) => (n.writable = !readOnly), { fenced: readOnly }, d);
        this.log.info({ readOnly }, readOnly ? 'instance fenced (config: no leader)' : 'instance unfenced (config: leader)');
        return await this.state(this.bounded(d));
      }
      await this.eval('local ro = ... box.cfg({read_only = ro}) require("shoal").note({fenced = ro}) return true', [readOnly], d);
      this.log.info({ readOnly }, readOnly ? 'instance fenced (read-only)' : 'instance unfenced (writable)');
      return await this.state(this.bounded(d));
    } finally {
      d.done();
    }
  }

  /** Polls until the process with `pid` no longer answers (or a new process does). */
  private async waitForExit(pid: number, d: Deadline): Promise<void> {
    for (;;) {
      try {
        const s = await this.state({ signal: d.signal, timeoutMs: Math.min(d.remaining(), 1_000) });
        if (s.pid !== pid) return;
      } catch (err) {
        if (err instanceof TarantoolGoneError) return;
        throw err;
      }
      await pause(20, d.signal);
    }
  }

  private async eval(lua: string, args: readonly JsonValue[], d: Deadline): Promise<unknown> {
    return this.console.eval(lua, args, this.bounded(d));
  }

  private bounded(d: Deadline): { signal: AbortSignal; timeoutMs: number; failFast: true } {
    return { signal: d.signal, timeoutMs: Math.min(d.remaining(), this.callTimeoutMs), failFast: true };
  }

  private requireCredentials(): ReplicationCredentials {
    if (!this.credentials) {
      throw new InstanceError('no replication credentials', 'set SHOAL_REPLICATION_PASSWORD or call setCredentials() before configuring');
    }
    return this.credentials;
  }
}
