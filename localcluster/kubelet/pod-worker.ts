import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '../../common/kube/client.js';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { runHandler, type Handler, type HandlerTarget } from './actions.js';
import { retryDelayMs, type BackoffOptions } from './backoff.js';
import { startContainerProcess } from './container-start.js';
import type { PodFacts } from './env.js';
import type { EventRecorder, PodRef } from './events.js';
import { unixUidForIp, type IpAllocator } from './ipam.js';
import { planLaunch } from './launch.js';
import {
  kubeTime,
  newRun,
  planStarts,
  recordExit,
  recordStart,
  type ContainerRun,
  type ExitInfo,
  type RestartPolicy,
} from './lifecycle.js';
import { claimPath, fetchObjects, objectStrings, serviceAccountToken } from './pod-objects.js';
import { PodStatusPoster } from './pod-status-poster.js';
import { initialTracker, observe, type ProbeKind, type ProbeTiming, type ProbeTracker } from './probe-state.js';
import { probeEffect, probeLoop } from './probes.js';
import { killUids, type ContainerProcess, type ContainerTarget } from './process.js';
import { computePodStatus, type PodStatusJson } from './status.js';
import { deletePodFinally, MIN_TERM_GRACE_MS, terminateProcess } from './termination.js';
import type { ImageTable, PodRuntimeInfo } from './types.js';
import { materializeVolumes, refreshTokenVolumes, tokenRefreshDelayMs, VolumeError, type FetchedObjects, type VolumeContext } from './volumes.js';

// One pod's life on this node: prepare (IP, directories, volumes), start containers as the pure
// plan says, probe them, post status, and on deletion run preStop, SIGTERM, SIGKILL, then finish
// the deletion in the API. Every decision is made by lifecycle.ts / status.ts; this class keeps the
// phases in order, each phase's I/O in its own file: pod-objects.ts (what volumes and env need from
// the API), container-start.ts, probes.ts, termination.ts, pod-status-poster.ts.

export interface PodWorkerDeps {
  client: KubeClient;
  hostIP: string;
  runDir: string;
  ipam: IpAllocator;
  uidBase: number;
  images: ImageTable;
  serviceEnv: Record<string, string>;
  extraEnv?: (pod: V1Pod, podIP: string) => Record<string, string>;
  backoff: BackoffOptions;
  logger: Logger;
  /** Records a pod event (kubectl describe / get events). */
  record: EventRecorder;
  /** The runtime view changed (pids, IP): the kubelet rewrites its state file. */
  onChange: () => void;
  /** The worker is finished (pod deleted, processes gone). */
  onDone: (worker: PodWorker) => void;
}

interface Live {
  proc: ContainerProcess;
  env: Record<string, string>;
  workingDir: string;
  probes: AbortController;
  trackers: Partial<Record<ProbeKind, ProbeTracker>>;
}

export class PodWorker {
  pod: V1Pod;
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private readonly log: Logger;
  private readonly dir: string;
  private ip: string | null = null;
  private unixUid: number | null = null;
  private volumes: Record<string, string> | null = null;
  private objects: FetchedObjects | null = null;
  private objectsStale = false;
  private startTimeMs: number | null = null;
  private prepareAttempts = 0;
  private readonly runs = new Map<string, ContainerRun>();
  private readonly live = new Map<string, Live>();
  private readonly abort = new AbortController();
  private wakeTimer: NodeJS.Timeout | undefined;
  private tokenTimer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private reconcileAgain = false;
  private terminating = false;
  private termDeadlineMs = Infinity;
  private finished = false;
  private goneFromApi = false;
  private readonly status: PodStatusPoster;

  constructor(
    pod: V1Pod,
    private readonly deps: PodWorkerDeps,
  ) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? '';
    this.name = pod.metadata?.name ?? '';
    this.log = deps.logger.child({ pod: this.name, namespace: this.namespace });
    this.status = new PodStatusPoster({
      client: deps.client,
      pod: this.ref,
      signal: this.abort.signal,
      log: this.log,
      compute: () => this.computeStatus(),
      canPost: () => !this.goneFromApi && !!this.ip,
      gone: () => this.goneFromApi,
    });
    // Short on purpose: Unix socket paths (the console socket lives in a volume here) are limited to
    // 108 bytes, and outside tools connect through this host path. The uid prefix keeps a recreated
    // pod, or a namesake in another namespace, apart.
    this.dir = path.join(deps.runDir, 'pods', `${this.name}-${this.uid.slice(0, 8)}`);
    const previous = new Map([...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].map((s) => [s.name, s]));
    const carried = (c: V1Container): number => {
      // A pod this kubelet ran before it restarted: its containers start again, and that counts.
      const p = previous.get(c.name);
      return p ? p.restartCount + (p.containerID ? 1 : 0) : 0;
    };
    for (const c of pod.spec?.initContainers ?? []) this.runs.set(c.name, newRun(c.name, 'init', c.image ?? '', carried(c)));
    for (const c of pod.spec?.containers ?? []) this.runs.set(c.name, newRun(c.name, 'app', c.image ?? '', carried(c)));
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') this.finished = true; // never run a finished pod again
  }

  private get ref(): PodRef {
    return { namespace: this.namespace, name: this.name, uid: this.uid };
  }

  get done(): boolean {
    return this.finished && this.live.size === 0;
  }

  get isTerminating(): boolean {
    return this.terminating;
  }

  private get policy(): RestartPolicy {
    return (this.pod.spec?.restartPolicy as RestartPolicy | undefined) ?? 'Always';
  }

  private containerSpec(name: string): V1Container | undefined {
    return [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])].find((c) => c.name === name);
  }

  start(): void {
    if (this.pod.metadata?.deletionTimestamp) {
      void this.terminate(); // nothing runs yet: finish the deletion
      return;
    }
    if (this.finished) return;
    this.log.info({ uid: this.uid }, 'pod bound to this node: starting it');
    this.kick();
  }

  /** A newer version of the pod from the API. */
  update(pod: V1Pod): void {
    const before = this.pod;
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp) {
      const graceMs = (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
      if (!this.terminating) void this.terminate();
      else if (Date.now() + graceMs < this.termDeadlineMs) {
        this.termDeadlineMs = Date.now() + graceMs; // a second DELETE with a shorter grace
        this.log.info({ graceMs }, 'grace period shortened');
      }
      return;
    }
    // A changed image (the only mutable container field that matters) restarts that container.
    for (const c of pod.spec?.containers ?? []) {
      const old = before.spec?.containers?.find((o) => o.name === c.name);
      const run = this.runs.get(c.name);
      if (old && run && old.image !== c.image) {
        this.runs.set(c.name, { ...run, image: c.image ?? '', restartRequested: true });
        if (this.live.has(c.name)) void this.killContainer(c.name, this.terminationGraceMs(), 'image changed');
      }
    }
    this.kick(); // readiness gates may have changed
    this.postStatusSoon();
  }

  /** The pod is gone from the API (deleted by someone else, or our own final DELETE). */
  removed(): void {
    this.goneFromApi = true;
    if (this.terminating) return; // the termination in progress finishes without the API
    this.terminating = true;
    this.termDeadlineMs = Date.now() + MIN_TERM_GRACE_MS;
    void this.stopAll(false).then(() => this.cleanup());
  }

  /** Kubelet shutdown: stop every process quickly; the pod stays in the API. */
  async shutdown(): Promise<void> {
    this.goneFromApi = true; // do not post or delete any more
    this.terminating = true;
    this.termDeadlineMs = Math.min(this.termDeadlineMs, Date.now() + MIN_TERM_GRACE_MS);
    await this.stopAll(false);
    await this.cleanup();
  }

  /** Re-post the status even when unchanged (after an API outage). */
  repostStatus(): void {
    this.status.repost();
  }

  info(): PodRuntimeInfo {
    const pids: Record<string, number | null> = {};
    const logs: Record<string, string> = {};
    for (const name of this.runs.keys()) {
      pids[name] = this.live.get(name)?.proc.pid ?? null;
      logs[name] = this.logPath(name);
    }
    return {
      namespace: this.namespace,
      name: this.name,
      podUid: this.uid,
      ip: this.ip,
      unixUid: this.unixUid,
      dir: this.dir,
      pids,
      logs,
      volumes: { ...(this.volumes ?? {}) },
    };
  }

  /** Where `kubectl exec` runs a command in a container; undefined while it is not running. */
  execTarget(container: string): ContainerTarget | undefined {
    const live = this.live.get(container);
    if (!live || this.unixUid === null) return undefined;
    return { pid: live.proc.pid, uid: this.unixUid, gid: this.unixUid, env: live.env, workingDir: live.workingDir };
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string, container?: string): void {
    if (this.goneFromApi) return;
    this.deps.record(this.ref, type, reason, message, container);
  }

  private logPath(container: string): string {
    return path.join(this.dir, 'logs', `${container}.log`);
  }

  private terminationGraceMs(): number {
    return (this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
  }

  // ---- the reconcile loop -------------------------------------------------------------------

  private kick(): void {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    void this.reconcile()
      .catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'pod sync failed'))
      .finally(() => {
        this.reconciling = false;
        if (this.reconcileAgain) {
          this.reconcileAgain = false;
          this.kick();
        }
      });
  }

  private wakeAt(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.kick(), Math.max(0, ms - Date.now()));
  }

  private volumeContext(): VolumeContext {
    return {
      pod: this.pod,
      facts: this.facts(),
      podDir: this.dir,
      unixUid: this.unixUid as number,
      objects: this.objects as FetchedObjects,
      claimPath: (c) => claimPath(this.deps.client, this.namespace, c, this.abort.signal),
      serviceAccountToken: (a, e) => serviceAccountToken(this.deps.client, this.ref, this.pod.spec?.serviceAccountName, a, e, this.abort.signal),
    };
  }

  /** Projected ServiceAccount tokens are fetched again before they expire, as the real kubelet does. */
  private scheduleTokenRefresh(retryMs?: number): void {
    const delay = retryMs ?? tokenRefreshDelayMs(this.pod);
    if (delay === null || this.terminating || this.abort.signal.aborted) return;
    clearTimeout(this.tokenTimer);
    this.tokenTimer = setTimeout(() => {
      void refreshTokenVolumes(this.volumeContext(), this.volumes ?? {}).then(
        (done) => {
          if (done.length > 0) this.log.info({ volumes: done }, 'refreshed projected service account tokens');
          this.scheduleTokenRefresh();
        },
        (err: unknown) => {
          this.log.warn({ err: errorMessage(err) }, 'could not refresh projected service account tokens; retrying in 10 s');
          this.scheduleTokenRefresh(10_000);
        },
      );
    }, delay);
    this.tokenTimer.unref();
  }

  private async reconcile(): Promise<void> {
    if (this.terminating || this.finished || this.abort.signal.aborted) return;
    if (!this.volumes) {
      const ready = await this.prepare();
      if (!ready) {
        this.wakeAt(Date.now() + retryDelayMs(this.prepareAttempts++));
        return;
      }
    }
    if (this.objectsStale) await this.fetchObjects().catch(() => undefined);
    const all = [...this.runs.values()];
    const plan = planStarts(
      this.policy,
      all.filter((r) => r.kind === 'init'),
      all.filter((r) => r.kind === 'app'),
      Date.now(),
    );
    for (const name of plan.start) {
      if (this.terminating) return;
      // One after the other, each after its postStart hook, as the real kubelet does: that is what
      // lets a sidecar listed first (Shoal's agent in container mode) be ready before the next starts.
      await this.startContainer(name);
    }
    if (plan.wakeAtMs !== undefined) this.wakeAt(plan.wakeAtMs);
    this.postStatusSoon();
    this.maybeFinished();
  }

  /** A pod whose containers all exited for good (restartPolicy Never/OnFailure) is done running. */
  private maybeFinished(): void {
    const phase = this.computeStatus().phase;
    if ((phase === 'Succeeded' || phase === 'Failed') && this.live.size === 0) {
      this.log.info({ phase }, 'pod finished');
      this.finished = true;
    }
  }

  private facts(): PodFacts {
    return { pod: this.pod, podIP: this.ip ?? '', hostIP: this.deps.hostIP };
  }

  private async fetchObjects(): Promise<void> {
    this.objects = await fetchObjects(this.deps.client, this.pod, this.namespace, this.abort.signal);
    this.objectsStale = false;
  }

  /** IP, directories, objects, volumes. False (with waiting reasons set) while something is not ready. */
  private async prepare(): Promise<boolean> {
    if (!this.ip) {
      this.ip = this.deps.ipam.allocate(this.uid, this.pod.status?.podIP);
      this.unixUid = unixUidForIp(this.ip, this.deps.uidBase);
      this.startTimeMs = Date.now();
      this.log.info({ ip: this.ip, unixUid: this.unixUid }, 'pod IP assigned');
      this.deps.onChange();
      this.postStatusSoon();
    }
    await mkdir(path.join(this.dir, 'logs'), { recursive: true });
    await mkdir(path.join(this.dir, 'volumes'), { recursive: true });
    try {
      await this.fetchObjects();
      this.volumes = await materializeVolumes(this.volumeContext());
      this.scheduleTokenRefresh();
      this.deps.onChange();
      return true;
    } catch (err) {
      const message = err instanceof VolumeError ? err.message : `setting up volumes: ${errorMessage(err)}`;
      if (this.prepareAttempts % 5 === 0) this.log.warn({ err: message }, 'pod not ready to start yet');
      this.event('Warning', 'FailedMount', message);
      for (const [name, run] of this.runs) {
        if (!run.running) this.runs.set(name, { ...run, waiting: { reason: 'ContainerCreating', message } });
      }
      this.postStatusSoon();
      return false;
    }
  }

  private async startContainer(name: string): Promise<void> {
    const container = this.containerSpec(name);
    const run = this.runs.get(name);
    if (!container || !run || !this.volumes || !this.objects || !this.ip || this.unixUid === null) return;
    const facts = this.facts();
    const objects = objectStrings(this.objects);
    const hostname = this.pod.spec?.hostname ?? this.name;
    const baseEnv = { ...this.deps.serviceEnv, ...(this.deps.extraEnv?.(this.pod, this.ip) ?? {}) };
    const planned = planLaunch({ container, facts, objects, volumes: this.volumes, images: this.deps.images, baseEnv, hostname });
    if (!planned.ok) {
      this.log.warn({ container: name, reason: planned.reason, err: planned.message }, 'container cannot start');
      this.event('Warning', 'Failed', `Error: ${planned.reason}: ${planned.message}`, name);
      this.objectsStale = true;
      this.runs.set(name, { ...run, waiting: { reason: planned.reason, message: planned.message }, notBeforeMs: Date.now() + 5_000 });
      this.wakeAt(Date.now() + 5_000);
      return;
    }
    const launch = planned.launch;
    const proc = startContainerProcess({ launch, uid: this.unixUid, logPath: this.logPath(name), hostname });
    const now = Date.now();
    const started = recordStart(run, proc.pid, now);
    const probes = new AbortController();
    const live: Live = { proc, env: launch.env, workingDir: launch.workingDir, probes, trackers: {} };
    this.live.set(name, live);
    const hasStartup = run.kind === 'app' && container.startupProbe !== undefined;
    const hasReadiness = run.kind === 'app' && container.readinessProbe !== undefined;
    this.runs.set(name, { ...started, started: !hasStartup, ready: !hasStartup && !hasReadiness });
    this.log.info({ container: name, pid: proc.pid, argv: launch.argv, restartCount: started.restartCount }, 'container started');
    this.event('Normal', 'Started', `Started container ${name} (pid ${proc.pid})`, name);
    void proc.exited.then((exit) => this.onExit(name, proc, exit));
    if (run.kind === 'app') {
      for (const kind of ['startup', 'liveness', 'readiness'] as const) {
        const probe = container[`${kind}Probe`];
        if (probe) {
          live.trackers[kind] = initialTracker(kind);
          void probeLoop(kind, probe, probes.signal, {
            run: () => this.runs.get(name),
            target: () => this.handlerTarget(name),
            onResult: (outcome, message, timing) => this.onProbe(name, kind, outcome, message, timing),
          });
        }
      }
    }
    this.deps.onChange();
    this.postStatusSoon();
    const postStart = container.lifecycle?.postStart;
    if (run.kind === 'app' && postStart) await this.runPostStart(name, postStart as Handler);
  }

  private handlerTarget(name: string): HandlerTarget {
    const live = this.live.get(name);
    return {
      podIP: this.ip ?? '',
      ports: this.containerSpec(name)?.ports ?? [],
      ...(live ? { pid: live.proc.pid } : {}),
      uid: this.unixUid ?? 0,
      gid: this.unixUid ?? 0,
      env: live?.env ?? {},
      workingDir: live?.workingDir ?? '/',
    };
  }

  private async runPostStart(name: string, handler: Handler): Promise<void> {
    const outcome = await runHandler(handler, this.handlerTarget(name), this.terminationGraceMs());
    if (!outcome.ok && this.live.has(name) && !this.terminating) {
      this.log.warn({ container: name, err: outcome.message }, 'postStart hook failed: killing the container');
      this.event('Warning', 'FailedPostStartHook', outcome.message, name);
      void this.killContainer(name, this.terminationGraceMs(), 'FailedPostStartHook');
    }
  }

  private onExit(name: string, proc: ContainerProcess, exit: ExitInfo): void {
    const live = this.live.get(name);
    if (live?.proc !== proc) return;
    live.probes.abort();
    this.live.delete(name);
    const run = this.runs.get(name);
    const after = run ? recordExit(run, exit, Date.now(), this.policy, this.deps.backoff) : undefined;
    if (after) this.runs.set(name, after);
    this.log.info({ container: name, pid: proc.pid, exitCode: exit.exitCode }, 'container exited');
    if (after?.notBeforeMs !== undefined && after.notBeforeMs > Date.now() && !this.terminating) {
      this.event('Warning', 'BackOff', `Back-off restarting failed container ${name}`, name);
    }
    this.deps.onChange();
    this.postStatusSoon();
    this.kick();
  }

  // ---- probes --------------------------------------------------------------------------------

  private onProbe(name: string, kind: ProbeKind, outcome: 'success' | 'failure', message: string, timing: ProbeTiming): void {
    const live = this.live.get(name);
    const run = this.runs.get(name);
    const before = live?.trackers[kind];
    if (!live || !run || !before || this.terminating) return;
    const after = observe(before, outcome, timing);
    live.trackers[kind] = after;
    if (after.result === before.result) return;
    this.log.info({ container: name, probe: kind, result: after.result, detail: message }, 'probe result changed');
    if (after.result === 'failure') this.event('Warning', 'Unhealthy', `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed: ${message}`, name);
    const effect = probeEffect(kind, after.result, run, this.containerSpec(name)?.readinessProbe !== undefined);
    if (effect.run) this.runs.set(name, effect.run);
    if (effect.kill) void this.killContainer(name, this.terminationGraceMs(), `${kind} probe failed: ${message}`);
    this.postStatusSoon();
  }

  // ---- stopping -------------------------------------------------------------------------------

  /** SIGTERM, then SIGKILL once `graceMs` passed (or the termination deadline, whichever is first). */
  private async killContainer(name: string, graceMs: number, why: string): Promise<void> {
    const live = this.live.get(name);
    if (!live) return;
    this.log.info({ container: name, pid: live.proc.pid, why, graceMs }, 'stopping container');
    this.event('Normal', 'Killing', `Stopping container ${name}: ${why}`, name);
    live.probes.abort();
    const run = this.runs.get(name);
    if (run) this.runs.set(name, { ...run, ready: false });
    this.postStatusSoon();
    await terminateProcess(live.proc, graceMs, () => this.termDeadlineMs, this.log, name);
  }

  /** Graceful deletion as the kubelet does it, then the final DELETE with the uid precondition. */
  private async terminate(): Promise<void> {
    if (this.terminating) return;
    this.terminating = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.tokenTimer);
    const graceS = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    this.termDeadlineMs = Date.now() + graceS * 1000;
    this.log.info({ graceS }, 'pod is being deleted: stopping its containers');
    await this.stopAll(true);
    await this.flushStatus();
    await deletePodFinally(this.deps.client, this.ref, () => this.goneFromApi || this.abort.signal.aborted, this.abort.signal, this.log);
    await this.cleanup();
  }

  /** Stops every running container in parallel: preStop (app containers, when asked), SIGTERM, SIGKILL at the deadline. */
  private async stopAll(withPreStop: boolean): Promise<void> {
    for (const [name, run] of this.runs) this.runs.set(name, { ...run, ready: false });
    this.postStatusSoon();
    await Promise.all(
      [...this.live.keys()].map(async (name) => {
        const preStop = this.containerSpec(name)?.lifecycle?.preStop as Handler | undefined;
        const isApp = this.runs.get(name)?.kind === 'app';
        if (withPreStop && preStop && isApp) {
          const budget = Math.max(0, this.termDeadlineMs - Date.now());
          this.log.info({ container: name, budgetMs: budget }, 'running preStop hook');
          const outcome = await runHandler(preStop, this.handlerTarget(name), budget);
          this.log.info({ container: name, ok: outcome.ok, detail: outcome.message }, 'preStop hook finished');
          if (!outcome.ok) this.event('Warning', 'FailedPreStopHook', outcome.message, name);
          // The kubelet leaves at least 2 s between SIGTERM and SIGKILL after a hook.
          this.termDeadlineMs = Math.max(this.termDeadlineMs, Date.now() + MIN_TERM_GRACE_MS);
        }
        await this.killContainer(name, Math.max(0, this.termDeadlineMs - Date.now()), 'pod termination');
      }),
    );
  }

  private async cleanup(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.finished = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.tokenTimer);
    this.status.cancel();
    if (this.unixUid !== null) {
      // Anything that escaped its process group (a daemon that called setsid) still runs as the pod's uid.
      const n = killUids(this.unixUid, this.unixUid);
      if (n > 0) this.log.warn({ killed: n }, 'killed processes the pod left behind');
    }
    this.deps.ipam.release(this.uid);
    await rm(path.join(this.dir, 'volumes'), { recursive: true, force: true }).catch(() => undefined);
    this.deps.onChange();
    this.deps.onDone(this);
  }

  // ---- status ---------------------------------------------------------------------------------

  private computeStatus(): PodStatusJson {
    const all = [...this.runs.values()];
    const own = this.status.ownConditions;
    const ownTypes = new Set(own.map((c) => c.type));
    return computePodStatus({
      podName: this.name,
      policy: this.policy,
      init: all.filter((r) => r.kind === 'init'),
      app: all.filter((r) => r.kind === 'app'),
      podIP: this.ip,
      hostIP: this.deps.hostIP,
      startTime: this.pod.status?.startTime
        ? kubeTime(new Date(this.pod.status.startTime).getTime())
        : kubeTime(this.startTimeMs ?? Date.now()),
      terminating: this.terminating,
      readinessGates: (this.pod.spec?.readinessGates ?? []).map((g) => g.conditionType),
      // Our own conditions as we last posted them (the watch may lag), everyone else's from the API.
      previousConditions: [...own, ...(this.pod.status?.conditions ?? []).filter((c) => !ownTypes.has(c.type))],
      nowMs: Date.now(),
    });
  }

  private postStatusSoon(): void {
    this.status.soon();
  }

  private flushStatus(): Promise<void> {
    return this.status.flush();
  }
}
