import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { CoreV1Api, V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { runHandler, type Handler, type HandlerTarget } from './actions.js';
import { apiStatus as httpStatusOf, isUnreachable } from '../../shared/kube/errors.js';
import { deletePodNow, patchPodStatus } from './api.js';
import { retryDelayMs, type BackoffOptions } from './backoff.js';
import type { ObjectData, PodFacts } from './env.js';
import type { EventRecorder } from './events.js';
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
import { initialTracker, observe, probeTiming, type ProbeKind, type ProbeTracker } from './probe-state.js';
import { killUids, spawnContainer, type ContainerProcess, type ContainerTarget } from './process.js';
import { referencedObjects } from './refs.js';
import { sleep, waitAtMost } from '../../shared/time.js';
import { computePodStatus, type PodStatusJson } from './status.js';
import type { ImageTable, PodRuntimeInfo } from './types.js';
import { materializeVolumes, VolumeError, type FetchedObjects } from './volumes.js';

// One pod's life on this node: prepare (IP, directories, volumes), start containers as the pure
// plan says, probe them, post status, and on deletion run preStop, SIGTERM, SIGKILL, then finish
// the deletion in the API. Every decision is made by lifecycle.ts / status.ts; this class does I/O.

export interface PodWorkerDeps {
  core: CoreV1Api;
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

/** The kubelet's minimum wait between SIGTERM and SIGKILL after a preStop hook used up the grace period. */
const MIN_TERM_GRACE_MS = 2_000;

interface Live {
  proc: ContainerProcess;
  env: Record<string, string>;
  workingDir: string;
  probes: AbortController;
  trackers: Partial<Record<ProbeKind, ProbeTracker>>;
}

function decodeData(data: Record<string, string> | undefined, base64: boolean): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, base64 ? 'base64' : 'utf8');
  return out;
}

function asStrings(m: Map<string, Record<string, Buffer> | null>): Map<string, Record<string, string> | null> {
  const out = new Map<string, Record<string, string> | null>();
  for (const [name, data] of m) {
    out.set(name, data && Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString('utf8')])));
  }
  return out;
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
  private reconciling = false;
  private reconcileAgain = false;
  private terminating = false;
  private termDeadlineMs = Infinity;
  private finished = false;
  private goneFromApi = false;
  private statusTimer: NodeJS.Timeout | undefined;
  private posting = false;
  private lastPosted: string | null = null;
  private lastConditions: PodStatusJson['conditions'] = [];

  constructor(
    pod: V1Pod,
    private readonly deps: PodWorkerDeps,
  ) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? '';
    this.name = pod.metadata?.name ?? '';
    this.log = deps.logger.child({ pod: this.name, namespace: this.namespace });
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
    this.lastPosted = null;
    this.postStatusSoon();
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
    this.deps.record({ namespace: this.namespace, name: this.name, uid: this.uid }, type, reason, message, container);
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
    const refs = referencedObjects(this.pod);
    const objects: FetchedObjects = { secrets: new Map(), configMaps: new Map() };
    const absent = (err: unknown): null => {
      if (httpStatusOf(err) === 404) return null;
      throw err;
    };
    for (const name of refs.secrets) {
      const s = await this.deps.core.readNamespacedSecret({ name, namespace: this.namespace }).catch(absent);
      objects.secrets.set(name, s ? decodeData(s.data, true) : null);
    }
    for (const name of refs.configMaps) {
      const m = await this.deps.core.readNamespacedConfigMap({ name, namespace: this.namespace }).catch(absent);
      objects.configMaps.set(name, m ? { ...decodeData(m.data, false), ...decodeData(m.binaryData, true) } : null);
    }
    this.objects = objects;
    this.objectsStale = false;
  }

  private async claimPath(claimName: string): Promise<string> {
    const pvc = await this.deps.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace: this.namespace });
    const pvName = pvc.spec?.volumeName;
    if (!pvName || pvc.status?.phase !== 'Bound') throw new VolumeError(`persistentvolumeclaim "${claimName}" is not bound yet`);
    const pv = await this.deps.core.readPersistentVolume({ name: pvName });
    const p = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
    if (!p) throw new VolumeError(`persistentvolume "${pvName}" has neither local.path nor hostPath.path`);
    await mkdir(p, { recursive: true });
    return p;
  }

  private async serviceAccountToken(audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
    const sa = this.pod.spec?.serviceAccountName ?? 'default';
    const tr = await this.deps.core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: this.namespace,
      body: {
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: expirationSeconds ?? 3600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.name, uid: this.uid },
        },
      },
    });
    return tr.status?.token ?? '';
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
      this.volumes = await materializeVolumes({
        pod: this.pod,
        facts: this.facts(),
        podDir: this.dir,
        unixUid: this.unixUid as number,
        objects: this.objects as FetchedObjects,
        claimPath: (c) => this.claimPath(c),
        serviceAccountToken: (a, e) => this.serviceAccountToken(a, e),
      });
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
    const objects: ObjectData = { secrets: asStrings(this.objects.secrets), configMaps: asStrings(this.objects.configMaps) };
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
    const uid = this.unixUid;
    for (const dir of launch.subPathDirs) {
      // subPath directories are created (owned by the pod) when missing, as the kubelet does.
      if (!existsSync(dir)) {
        mkdirSync(dir, { recursive: true });
        chownSync(dir, uid, uid);
      }
    }
    const proc = spawnContainer({
      argv: launch.argv,
      env: launch.env,
      workingDir: launch.workingDir,
      mounts: launch.mounts,
      uid,
      gid: uid,
      logPath: this.logPath(name),
      hostname,
    });
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
          void this.probeLoop(name, kind, probe, probes.signal);
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

  private async probeLoop(name: string, kind: ProbeKind, probe: V1Probe, signal: AbortSignal): Promise<void> {
    const timing = probeTiming(probe);
    await sleep(timing.initialDelayMs, signal).catch(() => undefined);
    while (!signal.aborted) {
      const run = this.runs.get(name);
      const waitForStartup = kind !== 'startup' && run !== undefined && !run.started;
      if (!waitForStartup) {
        const outcome = await runHandler(probe as Handler, this.handlerTarget(name), timing.timeoutMs);
        if (signal.aborted) return;
        this.onProbe(name, kind, outcome.ok ? 'success' : 'failure', outcome.message, timing);
        if (kind === 'startup' && this.runs.get(name)?.started) return;
      }
      await sleep(timing.periodMs, signal).catch(() => undefined);
    }
  }

  private onProbe(name: string, kind: ProbeKind, outcome: 'success' | 'failure', message: string, timing: ReturnType<typeof probeTiming>): void {
    const live = this.live.get(name);
    const run = this.runs.get(name);
    const before = live?.trackers[kind];
    if (!live || !run || !before || this.terminating) return;
    const after = observe(before, outcome, timing);
    live.trackers[kind] = after;
    if (after.result === before.result) return;
    this.log.info({ container: name, probe: kind, result: after.result, detail: message }, 'probe result changed');
    if (after.result === 'failure') this.event('Warning', 'Unhealthy', `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed: ${message}`, name);
    if (kind === 'readiness') {
      this.runs.set(name, { ...run, ready: after.result === 'success' });
    } else if (kind === 'startup' && after.result === 'success') {
      const hasReadiness = this.containerSpec(name)?.readinessProbe !== undefined;
      this.runs.set(name, { ...run, started: true, ready: hasReadiness ? run.ready : true });
    } else if (after.result === 'failure') {
      void this.killContainer(name, this.terminationGraceMs(), `${kind} probe failed: ${message}`);
    }
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
    live.proc.signal('SIGTERM');
    const killAt = Date.now() + graceMs;
    let exited = false;
    void live.proc.exited.then(() => (exited = true));
    while (!exited && Date.now() < Math.min(killAt, this.termDeadlineMs)) {
      await waitAtMost(live.proc.exited, 100);
    }
    if (!exited) {
      this.log.warn({ container: name, pid: live.proc.pid }, 'container did not stop in its grace period: SIGKILL');
      live.proc.signal('SIGKILL');
      await live.proc.exited;
    }
  }

  /** Graceful deletion as the kubelet does it, then the final DELETE with the uid precondition. */
  private async terminate(): Promise<void> {
    if (this.terminating) return;
    this.terminating = true;
    clearTimeout(this.wakeTimer);
    const graceS = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    this.termDeadlineMs = Date.now() + graceS * 1000;
    this.log.info({ graceS }, 'pod is being deleted: stopping its containers');
    await this.stopAll(true);
    await this.flushStatus();
    while (!this.goneFromApi && !this.abort.signal.aborted) {
      try {
        await deletePodNow(this.deps.core, this.namespace, this.name, this.uid);
        this.log.info('pod deleted');
        break;
      } catch (err) {
        const code = httpStatusOf(err);
        if (code === 404 || code === 409) break; // gone, or a new pod of the same name: not ours to delete
        this.log.warn({ err: errorMessage(err) }, 'final pod delete failed; retrying');
        await sleep(1_000, this.abort.signal).catch(() => undefined);
      }
    }
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
    clearTimeout(this.statusTimer);
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
    const ownTypes = new Set(this.lastConditions.map((c) => c.type));
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
      previousConditions: [...this.lastConditions, ...(this.pod.status?.conditions ?? []).filter((c) => !ownTypes.has(c.type))],
      nowMs: Date.now(),
    });
  }

  private postStatusSoon(): void {
    if (this.goneFromApi || this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      void this.flushStatus();
    }, 20);
  }

  private async flushStatus(): Promise<void> {
    if (this.goneFromApi || !this.ip) return;
    if (this.posting) {
      this.postStatusSoon();
      return;
    }
    const status = this.computeStatus();
    const body = JSON.stringify(status);
    if (body === this.lastPosted) return;
    this.posting = true;
    try {
      await patchPodStatus(this.deps.core, this.namespace, this.name, this.uid, status);
      this.lastPosted = body;
      this.lastConditions = status.conditions.filter((c) => ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].includes(c.type));
    } catch (err) {
      const code = httpStatusOf(err);
      const transient = isUnreachable(err) || code === 429 || (code !== undefined && code >= 500);
      if (!transient) {
        // 404: deleted (the watch will say so); 409/422: a recreated pod of the same name or a bug.
        if (code !== 404) this.log.warn({ err: errorMessage(err), code }, 'status update rejected');
        return;
      }
      clearTimeout(this.statusTimer);
      this.statusTimer = setTimeout(() => {
        this.statusTimer = undefined;
        void this.flushStatus();
      }, 1_000);
    } finally {
      this.posting = false;
    }
  }
}
