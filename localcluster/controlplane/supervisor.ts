import { join } from 'node:path';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { KubernetesBinaries } from './binaries.js';
import { apiServerFlags, controllerManagerFlags, etcdFlags, schedulerFlags, type FlagInputs } from './flags.js';
import { probe, waitUntil, type TlsMaterial } from './health.js';
import { ManagedProcess } from './processes.js';
import type { ComponentName } from './types.js';

// The four processes of one control plane, started in order and kept running: the controller-manager
// and the scheduler exit when they lose their leader lease (API server unreachable > ~10 s) and are
// started again, with backoff if they crash-loop; etcd and the API server are not restarted.

export interface SupervisorOptions {
  bins: KubernetesBinaries;
  flags: FlagInputs;
  logDir: string;
  pidDir: string;
  apiServerUrl: string;
  /** Client credentials for the API server's /readyz. */
  adminTls: TlsMaterial;
  startTimeoutMs: number;
  stopGraceMs: number;
  signal: AbortSignal | undefined;
  log: Logger;
}

export class ControlPlaneProcesses {
  readonly logFiles: Record<ComponentName, string>;
  private readonly etcd: ManagedProcess;
  private readonly apiServer: ManagedProcess;
  private readonly controllers: ManagedProcess[];
  private readonly all: ManagedProcess[];
  private readonly portOf: Map<ManagedProcess, number>;
  private stopping = false;
  private apiServerDown = false; // stopped on purpose through stopApiServer()
  private readonly restartTimers = new Map<ManagedProcess, NodeJS.Timeout>();
  private readonly backoffMs = new Map<ManagedProcess, number>();
  private stopPromise: Promise<void> | null = null;

  constructor(private readonly o: SupervisorOptions) {
    const { bins, flags, log } = o;
    this.logFiles = {
      etcd: join(o.logDir, 'etcd.log'),
      'kube-apiserver': join(o.logDir, 'kube-apiserver.log'),
      'kube-controller-manager': join(o.logDir, 'kube-controller-manager.log'),
      'kube-scheduler': join(o.logDir, 'kube-scheduler.log'),
    };
    const mk = (name: ComponentName, bin: string, args: string[]): ManagedProcess =>
      new ManagedProcess(name, bin, args, this.logFiles[name], join(o.pidDir, `${name}.pid`), log);
    this.etcd = mk('etcd', bins.etcd, etcdFlags(flags));
    this.apiServer = mk('kube-apiserver', bins.kubeApiServer, apiServerFlags(flags));
    const controllerManager = mk('kube-controller-manager', bins.kubeControllerManager, controllerManagerFlags(flags));
    const scheduler = mk('kube-scheduler', bins.kubeScheduler, schedulerFlags(flags));
    this.all = [scheduler, controllerManager, this.apiServer, this.etcd];
    this.controllers = [controllerManager, scheduler];
    this.portOf = new Map<ManagedProcess, number>([
      [controllerManager, flags.ports.controllerManager],
      [scheduler, flags.ports.scheduler],
    ]);
    for (const p of this.controllers) p.onUnexpectedExit = (_code, _signal, uptimeMs) => this.scheduleRestart(p, uptimeMs);
    for (const p of [this.etcd, this.apiServer]) {
      p.onUnexpectedExit = () => {
        if (!this.stopping) log.error({ process: p.name, logFile: p.logFile }, `${p.name} died; it is not restarted automatically`);
      };
    }
  }

  async startEtcd(): Promise<void> {
    const etcdUrl = this.o.flags.etcdUrl;
    this.etcd.start();
    await waitUntil(
      `etcd health at ${etcdUrl}/health`,
      this.etcd,
      async () => {
        const r = await probe(`${etcdUrl}/health`);
        return r.status === 200 && r.body.includes('"true"');
      },
      this.o.startTimeoutMs,
      this.o.signal,
    );
  }

  async startApiServer(): Promise<void> {
    this.apiServer.start();
    await this.waitApiServer();
  }

  async startControllers(): Promise<void> {
    for (const p of this.controllers) p.start();
    await Promise.all(this.controllers.map((p) => this.waitHealthy(p)));
  }

  pids(): Partial<Record<ComponentName, number>> {
    const out: Partial<Record<ComponentName, number>> = {};
    for (const p of this.all) if (p.pid !== undefined) out[p.name] = p.pid;
    return out;
  }

  /** Stops the API server only; the controllers' restarts wait for restartApiServer(). */
  async stopApiServer(): Promise<void> {
    if (this.stopping) throw new ShoalError('control plane is stopped');
    this.apiServerDown = true;
    await this.apiServer.stop(this.o.stopGraceMs);
  }

  async restartApiServer(): Promise<void> {
    if (this.stopping) throw new ShoalError('control plane is stopped');
    this.apiServer.start();
    await this.waitApiServer();
    this.apiServerDown = false;
    // Bring back controllers that lost their lease while the API server was away.
    const down = this.controllers.filter((p) => !p.running);
    for (const p of down) {
      clearTimeout(this.restartTimers.get(p));
      this.restartTimers.delete(p);
      p.start();
    }
    await Promise.all(down.map((p) => this.waitHealthy(p)));
  }

  /** Stops every process; idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      const { log, stopGraceMs } = this.o;
      this.stopping = true;
      for (const t of this.restartTimers.values()) clearTimeout(t);
      this.restartTimers.clear();
      const t = Date.now();
      // Controllers first (they would otherwise log API errors), then the API server, then etcd.
      const results = await Promise.allSettled(this.controllers.map((p) => p.stop(stopGraceMs)));
      results.push(...(await Promise.allSettled([this.apiServer.stop(stopGraceMs)])));
      results.push(...(await Promise.allSettled([this.etcd.stop(stopGraceMs)])));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      const left = this.all.filter((p) => p.running).map((p) => `${p.name} (pid ${p.pid})`);
      if (failed.length || left.length) {
        throw new ShoalError(`control plane did not stop cleanly: ${[...failed.map((f) => errorMessage(f.reason)), ...left].join('; ')}`);
      }
      log.info({ ms: Date.now() - t }, 'control plane stopped');
    })();
    return this.stopPromise;
  }

  private waitApiServer(): Promise<void> {
    const { apiServerUrl, adminTls } = this.o;
    const apiReady = async (): Promise<boolean> => {
      const r = await probe(`${apiServerUrl}/readyz`, adminTls);
      return r.status === 200;
    };
    return waitUntil(`kube-apiserver /readyz at ${apiServerUrl}`, this.apiServer, apiReady, this.o.startTimeoutMs, this.o.signal);
  }

  private waitHealthy(p: ManagedProcess): Promise<void> {
    return waitUntil(
      `${p.name} /healthz`,
      p,
      async () => (await probe(`https://127.0.0.1:${this.portOf.get(p)}/healthz`, { insecure: true })).status === 200,
      this.o.startTimeoutMs,
      this.o.signal,
    );
  }

  // While the API server is down on purpose, restarts wait for restartApiServer().
  private scheduleRestart(p: ManagedProcess, uptimeMs: number): void {
    if (this.stopping || this.apiServerDown || this.restartTimers.has(p)) return;
    const previous = this.backoffMs.get(p) ?? 0;
    const delay = uptimeMs > 60_000 ? 1000 : Math.min(Math.max(previous * 2, 1000), 10_000);
    this.backoffMs.set(p, delay);
    this.o.log.info({ process: p.name, delayMs: delay }, `restarting ${p.name}`);
    const timer = setTimeout(() => {
      this.restartTimers.delete(p);
      if (this.stopping || this.apiServerDown || p.running) return;
      try {
        p.start();
      } catch (err) {
        this.o.log.error({ process: p.name, err: errorMessage(err) }, `restart of ${p.name} failed`);
        this.scheduleRestart(p, 0);
      }
    }, delay);
    timer.unref();
    this.restartTimers.set(p, timer);
  }
}
