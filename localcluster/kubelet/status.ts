import { initDone, kubeTime, willRestart, type ContainerRun, type RestartPolicy, type Termination } from './lifecycle.js';

// The pod status the kubelet posts, computed from the container runs alone (pure). Shapes follow
// the API's JSON (times as RFC 3339 strings) because the status goes out as a JSON merge patch.

export interface ConditionJson {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastProbeTime: string | null;
  lastTransitionTime: string;
}

type TerminatedJson = Termination;
export interface ContainerStateJson {
  running?: { startedAt: string };
  waiting?: { reason: string; message?: string };
  terminated?: TerminatedJson;
}

export interface ContainerStatusJson {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerStateJson;
  lastState: ContainerStateJson;
}

export interface PodStatusJson {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  conditions: ConditionJson[];
  hostIP: string;
  podIP: string | null;
  podIPs: { ip: string }[] | null;
  startTime: string;
  initContainerStatuses: ContainerStatusJson[];
  containerStatuses: ContainerStatusJson[];
}

/** A condition as the API object or our last post has it (times as Date or string). */
export interface PreviousCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: Date | string | null;
  lastTransitionTime?: Date | string;
}

export interface StatusInput {
  podName: string;
  policy: RestartPolicy;
  init: ContainerRun[];
  app: ContainerRun[];
  podIP: string | null;
  hostIP: string;
  startTime: string;
  /** The pod is being deleted: nothing restarts any more. */
  terminating: boolean;
  /** Condition types of `spec.readinessGates`. */
  readinessGates: string[];
  /** The conditions the API object has now (to keep transition times and other writers' conditions). */
  previousConditions: PreviousCondition[];
  nowMs: number;
}

const OWN_CONDITIONS = new Set(['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']);

function timeString(t: Date | string | undefined, fallbackMs: number): string {
  if (t === undefined) return kubeTime(fallbackMs);
  return typeof t === 'string' ? t : kubeTime(t.getTime());
}

function restarts(r: ContainerRun, input: StatusInput): boolean {
  return !input.terminating && willRestart(r, input.policy);
}

/** The phase as the kubelet's getPhase computes it. */
export function podPhase(input: StatusInput): PodStatusJson['phase'] {
  let pendingInit = 0;
  let failedInit = 0;
  for (const r of input.init) {
    if (r.running) pendingInit++;
    else if (r.lastExit) {
      if (r.lastExit.exitCode !== 0) failedInit++;
    } else pendingInit++;
  }
  if (failedInit > 0 && input.policy === 'Never') return 'Failed';
  if (pendingInit > 0 || failedInit > 0) return 'Pending';
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const r of input.app) {
    if (r.running) running++;
    else if (r.lastExit) {
      stopped++;
      if (r.lastExit.exitCode === 0) succeeded++;
    } else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (input.policy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (input.policy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function containerStatus(r: ContainerRun, input: StatusInput, initialized: boolean): ContainerStatusJson {
  let state: ContainerStateJson;
  let lastState: ContainerStateJson = r.lastExit ? { terminated: r.lastExit } : {};
  if (r.running) {
    state = { running: { startedAt: r.running.startedAt } };
  } else if (r.lastExit && !restarts(r, input)) {
    state = { terminated: r.lastExit };
    lastState = r.prevExit ? { terminated: r.prevExit } : {};
  } else if (r.lastExit) {
    const waitS = Math.max(0, Math.ceil(((r.notBeforeMs ?? input.nowMs) - input.nowMs) / 1000));
    state = {
      waiting: r.waiting ?? {
        reason: 'CrashLoopBackOff',
        message: `back-off ${waitS}s restarting failed container=${r.name} pod=${input.podName}`,
      },
    };
  } else {
    const reason = r.kind === 'init' || !initialized ? 'PodInitializing' : 'ContainerCreating';
    state = { waiting: r.waiting ?? { reason } };
  }
  const containerID = r.running ? `process://${r.running.pid}` : r.lastExit?.containerID || undefined;
  return {
    name: r.name,
    image: r.image,
    imageID: '',
    ...(containerID ? { containerID } : {}),
    ready: r.running !== undefined && r.ready,
    started: r.running !== undefined && r.started,
    restartCount: r.restartCount,
    state,
    lastState,
  };
}

function condition(
  type: string,
  ok: boolean,
  reason: string | undefined,
  message: string | undefined,
  input: StatusInput,
): ConditionJson {
  const status = ok ? 'True' : 'False';
  const prev = input.previousConditions.find((c) => c.type === type);
  const since = prev && prev.status === status ? timeString(prev.lastTransitionTime, input.nowMs) : kubeTime(input.nowMs);
  return {
    type,
    status,
    ...(ok || !reason ? {} : { reason }),
    ...(ok || !message ? {} : { message }),
    lastProbeTime: null,
    lastTransitionTime: since,
  };
}

export function computePodStatus(input: StatusInput): PodStatusJson {
  const phase = podPhase(input);
  const initialized = initDone(input.init);
  const initStatuses = input.init.map((r) => containerStatus(r, input, initialized));
  const appStatuses = input.app.map((r) => containerStatus(r, input, initialized));

  const incompleteInit = input.init.filter((r) => !(r.lastExit?.exitCode === 0 && !r.running)).map((r) => r.name);
  const unready = appStatuses.filter((s) => !s.ready).map((s) => s.name);
  const completed = phase === 'Succeeded' || phase === 'Failed';
  const containersReady = unready.length === 0 && !completed;
  const gatesNotTrue = input.readinessGates.filter(
    (g) => input.previousConditions.find((c) => c.type === g)?.status !== 'True',
  );

  const containersReadyCond = condition(
    'ContainersReady',
    containersReady,
    completed ? 'PodCompleted' : 'ContainersNotReady',
    completed ? undefined : `containers with unready status: [${unready.join(' ')}]`,
    input,
  );
  const readyCond =
    containersReady && gatesNotTrue.length > 0
      ? condition('Ready', false, 'ReadinessGatesNotReady', `corresponding condition of pod readiness gate "${gatesNotTrue[0]}" does not exist.`, input)
      : condition('Ready', containersReady, containersReadyCond.reason, containersReadyCond.message, input);
  const initializedCond = condition(
    'Initialized',
    incompleteInit.length === 0,
    'ContainersNotInitialized',
    `containers with incomplete status: [${incompleteInit.join(' ')}]`,
    input,
  );
  const scheduled = input.previousConditions.find((c) => c.type === 'PodScheduled');
  const scheduledCond: ConditionJson = {
    type: 'PodScheduled',
    status: 'True',
    lastProbeTime: null,
    lastTransitionTime: timeString(scheduled?.status === 'True' ? scheduled.lastTransitionTime : undefined, input.nowMs),
  };
  // Conditions other writers own (readiness gates, DisruptionTarget…) are kept as they are: the
  // merge patch replaces the whole list.
  const foreign: ConditionJson[] = input.previousConditions
    .filter((c) => !OWN_CONDITIONS.has(c.type))
    .map((c) => ({
      type: c.type,
      status: c.status as ConditionJson['status'],
      ...(c.reason ? { reason: c.reason } : {}),
      ...(c.message ? { message: c.message } : {}),
      lastProbeTime: c.lastProbeTime ? timeString(c.lastProbeTime, input.nowMs) : null,
      lastTransitionTime: timeString(c.lastTransitionTime, input.nowMs),
    }));

  return {
    phase,
    conditions: [initializedCond, readyCond, containersReadyCond, scheduledCond, ...foreign],
    hostIP: input.hostIP,
    podIP: input.podIP,
    podIPs: input.podIP ? [{ ip: input.podIP }] : null,
    startTime: input.startTime,
    initContainerStatuses: initStatuses,
    containerStatuses: appStatuses,
  };
}
