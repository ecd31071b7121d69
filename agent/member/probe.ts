// The agent's running picture of its own Tarantool: polled through the console every heartbeat
// period, with the data directory's offline vclock read once per unconfigured process (it may scan
// xlogs). Heartbeats, self-fencing and the coordinator's own observation read the latest snapshot,
// so none of them waits on the console. Pure mappings to the coordinator's and the wire's shapes.
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import type { DataHazard, ObservedTarantool } from '../decide/model.js';
import type { Bounded } from '../instance/deadline.js';
import { readinessOf } from '../instance/readiness.js';
import { recoveryHazard } from '../tarantool/recovery.js';
import { unsupportedVersion } from '../tarantool/version.js';
import type { InstanceState, OfflineVclock } from '../instance/state.js';
import type { Vclock } from '../tarantool/vclock.js';
import type { InstanceState as WireInstance, TarantoolReport, UpstreamStatus } from '../wire/mesh-protocol.js';

export interface LocalSnapshot {
  /** Date.now() when taken. */
  at: number;
  /** null: the console did not answer. */
  state: InstanceState | null;
  error: string | null;
  /** The offline vclock of an unconfigured instance, once read (null = not read / not applicable). */
  offline: Vclock | null;
  /** What this process met recovering its data, from the same read (absent = none known). */
  hazard?: DataHazard | null;
}

export const NO_SNAPSHOT: LocalSnapshot = { at: 0, state: null, error: 'not probed yet', offline: null };

// A snapshot that cannot be recovered matters before box.cfg; own unconfirmed transactions until
// the process that recovered them follows another master (LocalProbe drops them then).
const hazardOf = (s: LocalSnapshot): DataHazard | null =>
  s.hazard && (s.hazard.kind === 'own-unconfirmed-sync' || s.state?.phase === 'waiting') ? s.hazard : null;

/** The coordinator's ObservedTarantool for a snapshot. */
export function toTarantoolReport(s: LocalSnapshot): TarantoolReport {
  const st = s.state;
  const unknown: TarantoolReport = {
    configured: false,
    alive: false,
    ro: true,
    status: 'unreachable',
    vclock: null,
    id: null,
    upstreamOk: false,
    upstreams: [],
    lagMs: null,
    replication: [],
    synchroQuorum: null,
    clusterUuids: null,
  };
  if (!st) return unknown;
  const sharding = st.shardingRoles === undefined ? {} : { shardingRoles: [...st.shardingRoles] };
  // Never configured: the coordinator sees a member that cannot start, not one to retry.
  if (unsupportedVersion(st.version) !== null) return { ...unknown, status: 'unsupported' };
  const hazard = hazardOf(s);
  if (st.phase === 'configured') {
    const ro = st.ro ?? true;
    return {
      ...(hazard ? { hazard } : {}),
      configured: true,
      alive: true,
      ro,
      status: st.status ?? 'unknown',
      vclock: { ...st.vclock },
      id: st.id ?? null,
      // lagOf yields a number for a replica only while an upstream from its master follows.
      upstreamOk: ro && st.lag !== undefined,
      upstreams: st.replication
        .filter((p) => p.upstream !== undefined && p.uuid !== st.uuid && p.uuid !== '')
        .map((p) => ({ uuid: p.uuid, status: p.upstream?.status ?? 'unknown', message: p.upstream?.message?.slice(0, 1024) ?? null })),
      lagMs: st.lag === undefined ? null : Math.round(st.lag * 1000),
      replication: [...(st.replicationUris ?? [])],
      synchroQuorum: st.synchroQuorum ?? null,
      clusterUuids: st.clusterUuids ? [...st.clusterUuids] : null,
      synchro: st.synchro ? { owner: st.synchro.owner, term: st.synchro.term, len: st.synchro.len } : null,
      ...sharding,
      ...(st.vshard ? { vshard: st.vshard } : {}),
    };
  }
  if (st.phase === 'waiting') return { ...unknown, ...(hazard ? { hazard } : {}), ...sharding, alive: true, status: 'unconfigured', vclock: s.offline ? { ...s.offline } : null };
  if (st.phase === 'configuring') return { ...unknown, ...sharding, alive: true, status: 'configuring' };
  // loaded (cannot answer), exiting (moving its data aside), failed (box.cfg broke half-way).
  return { ...unknown, status: st.phase };
}

export const toObservedTarantool = (s: LocalSnapshot): ObservedTarantool => toTarantoolReport(s);

/** The heartbeat's instance state (wire/mesh-protocol.ts). */
export function toWireInstance(s: LocalSnapshot): WireInstance {
  const st = s.state;
  const upstreams: UpstreamStatus[] = (st?.replication ?? [])
    .filter((p) => p.upstream !== undefined && p.uuid !== st?.uuid)
    .slice(0, 64)
    .map((p) => ({
      peer: (p.upstream?.peer ?? p.uuid).slice(0, 512) || p.uuid,
      status: (p.upstream?.status ?? 'unknown').slice(0, 64),
      lag: nonNegative(p.upstream?.lag),
      idle: nonNegative(p.upstream?.idle),
      message: p.upstream?.message?.slice(0, 1024) ?? null,
    }));
  return {
    role: st?.role ?? 'unconfigured',
    ro: st?.ro ?? true,
    vclock: st ? { ...st.vclock } : {},
    lag: nonNegative(st?.lag),
    healthy: st ? readinessOf(st).ready : false,
    configured: st?.configured ?? false,
    upstreams,
    tarantool: toTarantoolReport(s),
  };
}

const nonNegative = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : Math.max(0, v));

/** What the probe needs from LocalInstance. */
export interface ProbeSource {
  state(o: Bounded): Promise<InstanceState>;
  offlineVclock(o: Bounded): Promise<OfflineVclock>;
}

export interface LocalProbeOptions {
  instance: ProbeSource;
  logger: Logger;
  intervalMs: number;
  /** Bound of one status call. */
  timeoutMs: number;
  /** Called after every refresh (topology re-delivery after a Tarantool restart, …). */
  onSnapshot?: (s: LocalSnapshot) => void;
}

export class LocalProbe {
  private snapshot: LocalSnapshot = NO_SNAPSHOT;
  private inFlight: Promise<LocalSnapshot> | undefined;
  // The offline vclock of one process in one configure attempt (its files do not change while it waits).
  private offline: { key: string; vclock: Vclock } | undefined;
  // What the offline read of a process found, kept for that process (by pid) after its box.cfg.
  private hazard: { pid: number; hazard: DataHazard | null } | undefined;
  private offlineReading: string | undefined;
  private lastError = '';
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;

  constructor(private readonly o: LocalProbeOptions) {}

  latest(): LocalSnapshot {
    return this.snapshot;
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
    const tick = (): void => {
      if (signal.aborted) return;
      void this.refresh().finally(() => {
        if (!signal.aborted) this.timer = setTimeout(tick, this.o.intervalMs);
      });
    };
    tick();
    signal.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
  }

  /** A fresh snapshot now (coalesced with one already being taken). */
  refresh(): Promise<LocalSnapshot> {
    this.inFlight ??= this.take().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async take(): Promise<LocalSnapshot> {
    let state: InstanceState | null = null;
    let error: string | null = null;
    try {
      state = await this.o.instance.state({ timeoutMs: this.o.timeoutMs, signal: this.signal });
      if (this.lastError) this.o.logger.info('Tarantool console answers again');
      this.lastError = '';
    } catch (err) {
      error = errorMessage(err);
      if (error !== this.lastError) this.o.logger.warn({ err: error }, 'Tarantool status probe failed');
      this.lastError = error;
    }
    const key = state?.phase === 'waiting' ? `${state.pid}/${state.attempt}` : undefined;
    if (key === undefined) this.offline = undefined;
    else if (this.offline?.key !== key && state) this.readOffline(key, state.pid);
    const offline = key !== undefined && this.offline?.key === key ? this.offline.vclock : null;
    if (state && this.hazard && this.hazard.pid !== state.pid) this.hazard = undefined;
    // Following another master, it gets that master's CONFIRM or ROLLBACK for its own unconfirmed
    // transactions (the new master's clear_synchro_queue writes them): settled for this process.
    if (state?.notes.masterUuid && this.hazard?.hazard?.kind === 'own-unconfirmed-sync') this.hazard = { pid: state.pid, hazard: null };
    // Reported with the vclock it was read with, never before: the coordinator decides on both at once.
    const hazard = offline !== null || state?.phase !== 'waiting' ? (this.hazard?.hazard ?? null) : null;
    this.snapshot = { at: Date.now(), state, error, offline, hazard };
    try {
      this.o.onSnapshot?.(this.snapshot);
    } catch (err) {
      this.o.logger.error({ err: errorMessage(err) }, 'snapshot listener threw');
    }
    return this.snapshot;
  }

  // In the background: a big data directory must not stall the heartbeats.
  private readOffline(key: string, pid: number): void {
    if (this.offlineReading === key) return;
    this.offlineReading = key;
    this.o.instance
      .offlineVclock({ timeoutMs: 60_000, signal: this.signal })
      .then((r) => {
        const hazard = recoveryHazard(r);
        this.hazard = { pid, hazard };
        this.offline = { key, vclock: r.vclock };
        if (hazard) this.o.logger.warn({ hazard: hazard.kind }, hazard.reason);
        if (r.warnings.length > 0) this.o.logger.warn({ warnings: r.warnings }, 'offline vclock read with warnings');
        this.o.logger.info({ vclock: r.vclock, empty: r.empty, xlogs: r.xlogsRead }, 'read the data directory vclock');
      })
      .catch((err: unknown) => this.o.logger.warn({ err: errorMessage(err) }, 'could not read the offline vclock; retrying'))
      .finally(() => {
        if (this.offlineReading === key) this.offlineReading = undefined;
      });
  }
}
