import { backoffResetAfterMs, restartDelayMs, type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';

// The pure core of a pod's life: what each container has done so far (`ContainerRun`), how a start
// or an exit changes that, and which containers to start next. The pod worker does the I/O.

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type ContainerKind = 'init' | 'app';

export interface Termination {
  exitCode: number;
  /** Completed (exit 0) or Error. */
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID: string;
}

export interface ContainerRun {
  name: string;
  kind: ContainerKind;
  image: string;
  running?: { pid: number; startedAt: string; startedAtMs: number };
  /** The run that finished last (the current state when the container is not running). */
  lastExit?: Termination;
  /** The run before `lastExit` (shown as lastState while `lastExit` is the current state). */
  prevExit?: Termination;
  restartCount: number;
  /** Number of times it was started by this kubelet. */
  starts: number;
  /** Why it is not running when it never ran or cannot start now (CreateContainerConfigError, ErrImagePull…). */
  waiting?: { reason: string; message?: string };
  ready: boolean;
  started: boolean;
  /** Restarts in a row that did not run long enough to reset the back-off. */
  crashes: number;
  /** Not to be started before this (back-off or retry after a config error). */
  notBeforeMs?: number;
  /** Restart it even under restartPolicy Never (its image changed). */
  restartRequested?: boolean;
}

export function newRun(name: string, kind: ContainerKind, image: string, restartCount = 0): ContainerRun {
  return { name, kind, image, restartCount, starts: 0, ready: false, started: false, crashes: 0 };
}

/** Kubernetes time: RFC 3339 in whole seconds, as the API server writes it. */
export function kubeTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function recordStart(run: ContainerRun, pid: number, nowMs: number): ContainerRun {
  return {
    ...run,
    running: { pid, startedAt: kubeTime(nowMs), startedAtMs: nowMs },
    restartCount: run.starts > 0 || run.lastExit ? run.restartCount + 1 : run.restartCount,
    starts: run.starts + 1,
    waiting: undefined,
    ready: false,
    started: false,
    notBeforeMs: undefined,
    restartRequested: false,
  };
}

/** Would a container that has exited be started again (outside pod termination)? */
export function willRestart(run: ContainerRun, policy: RestartPolicy): boolean {
  if (run.running || !run.lastExit) return false;
  if (run.kind === 'init') return run.lastExit.exitCode !== 0 && policy !== 'Never';
  if (run.restartRequested) return true;
  return policy === 'Always' || (policy === 'OnFailure' && run.lastExit.exitCode !== 0);
}

export interface ExitInfo {
  /** Exit code; 128 + signal number for a process killed by a signal (as container runtimes report). */
  exitCode: number;
  message?: string;
}

export function recordExit(
  run: ContainerRun,
  exit: ExitInfo,
  nowMs: number,
  policy: RestartPolicy,
  backoff: BackoffOptions = DEFAULT_BACKOFF,
): ContainerRun {
  const started = run.running;
  const termination: Termination = {
    exitCode: exit.exitCode,
    reason: exit.exitCode === 0 ? 'Completed' : 'Error',
    ...(exit.message ? { message: exit.message } : {}),
    startedAt: started?.startedAt ?? kubeTime(nowMs),
    finishedAt: kubeTime(nowMs),
    containerID: started ? `process://${started.pid}` : '',
  };
  const ranLong = started !== undefined && nowMs - started.startedAtMs >= backoffResetAfterMs(backoff);
  const next: ContainerRun = {
    ...run,
    running: undefined,
    prevExit: run.lastExit,
    lastExit: termination,
    ready: false,
    started: false,
    crashes: ranLong ? 0 : run.crashes,
  };
  if (!willRestart(next, policy)) return next;
  // The first restart in a row happens at once, later ones wait longer and longer.
  return { ...next, crashes: next.crashes + 1, notBeforeMs: nowMs + restartDelayMs(next.crashes, backoff) };
}

export interface StartPlan {
  /** Containers to start now, in this order. */
  start: string[];
  /** When to look again (a back-off ends), if nothing else happens before. */
  wakeAtMs?: number;
}

/** Have all init containers completed successfully (each at least once)? */
export function initDone(init: ContainerRun[]): boolean {
  return init.every((r) => r.lastExit?.exitCode === 0 && !r.running);
}

/**
 * What to start next: the first init container that has not completed (one at a time, in order),
 * then every app container that never ran or should restart, each once its back-off has passed.
 */
export function planStarts(policy: RestartPolicy, init: ContainerRun[], app: ContainerRun[], nowMs: number): StartPlan {
  const start: string[] = [];
  let wakeAtMs: number | undefined;
  const consider = (r: ContainerRun): void => {
    if (r.running) return;
    if (r.lastExit && !willRestart(r, policy)) return;
    if (r.notBeforeMs !== undefined && r.notBeforeMs > nowMs) {
      wakeAtMs = Math.min(wakeAtMs ?? Infinity, r.notBeforeMs);
      return;
    }
    start.push(r.name);
  };
  const pendingInit = init.find((r) => !(r.lastExit?.exitCode === 0 && !r.running));
  if (pendingInit) {
    consider(pendingInit);
  } else {
    for (const r of app) consider(r);
  }
  return wakeAtMs === undefined ? { start } : { start, wakeAtMs };
}
