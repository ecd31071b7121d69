// Prometheus metrics of the agent (SPEC §4 /metrics): the local instance's role, read-only flag,
// vclock and replication lag (refreshed at every scrape from a fresh state), and the console's
// latency and errors (observed on every call). One Registry per agent, so tests stay isolated.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConsoleObserver, ConsoleOutcome } from '../console/client.js';
import type { InstanceState, Role } from '../instance/state.js';

const ROLES: readonly Role[] = ['master', 'replica', 'fenced', 'unconfigured'];

export class AgentMetrics {
  readonly registry: Registry;
  readonly consoleObserver: ConsoleObserver;
  private readonly up: Gauge;
  private readonly configured: Gauge;
  private readonly role: Gauge<'role'>;
  private readonly readOnly: Gauge;
  private readonly vclock: Gauge<'component'>;
  private readonly lag: Gauge;
  private readonly upstreamLag: Gauge<'peer_uuid'>;
  private readonly upstreamFollowing: Gauge<'peer_uuid'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [(this.registry = new Registry())];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.up = new Gauge({ name: 'shoal_instance_up', help: '1 when the Tarantool console answered the last status call', registers });
    this.configured = new Gauge({ name: 'shoal_instance_configured', help: '1 once box.cfg has run', registers });
    this.role = new Gauge({ name: 'shoal_instance_role', help: '1 for the current role of the instance', labelNames: ['role'], registers });
    this.readOnly = new Gauge({ name: 'shoal_instance_read_only', help: 'box.info.ro as 0/1', registers });
    this.vclock = new Gauge({ name: 'shoal_instance_vclock', help: 'LSN per vclock component (replica id)', labelNames: ['component'], registers });
    this.lag = new Gauge({ name: 'shoal_replication_lag_seconds', help: 'seconds behind the master (0 on the master)', registers });
    this.upstreamLag = new Gauge({ name: 'shoal_replication_upstream_lag_seconds', help: 'box.info.replication[i].upstream.lag', labelNames: ['peer_uuid'], registers });
    this.upstreamFollowing = new Gauge({ name: 'shoal_replication_upstream_following', help: '1 when the upstream from this peer is in status follow', labelNames: ['peer_uuid'], registers });
    const latency = new Histogram({
      name: 'shoal_console_request_duration_seconds',
      help: 'console call duration, queueing and connecting included',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const errors = new Counter({ name: 'shoal_console_errors_total', help: 'console calls that failed, by kind', labelNames: ['kind'], registers });
    this.consoleObserver = {
      onCall(durationMs: number, outcome: ConsoleOutcome): void {
        latency.observe({ outcome }, durationMs / 1000);
        if (outcome !== 'ok') errors.inc({ kind: outcome });
      },
    };
  }

  /** Refreshes the instance gauges; `undefined` = the console did not answer. */
  observe(state: InstanceState | undefined): void {
    this.up.set(state ? 1 : 0);
    this.vclock.reset();
    this.upstreamLag.reset();
    this.upstreamFollowing.reset();
    if (!state) {
      this.lag.reset();
      return;
    }
    this.configured.set(state.configured ? 1 : 0);
    for (const r of ROLES) this.role.set({ role: r }, state.role === r ? 1 : 0);
    this.readOnly.set(state.ro === false ? 0 : 1);
    for (const [component, lsn] of Object.entries(state.vclock)) this.vclock.set({ component }, lsn);
    if (state.lag === undefined) this.lag.reset();
    else this.lag.set(state.lag);
    for (const p of state.replication) {
      if (!p.upstream || p.uuid === state.uuid) continue;
      this.upstreamFollowing.set({ peer_uuid: p.uuid }, p.upstream.status === 'follow' ? 1 : 0);
      if (p.upstream.lag !== undefined) this.upstreamLag.set({ peer_uuid: p.uuid }, p.upstream.lag);
    }
  }
}
