import { describe, expect, it } from 'vitest';
import { restartDelayMs } from '../../localcluster/kubelet/backoff.js';
import {
  kubeTime,
  newRun,
  planStarts,
  recordExit,
  recordStart,
  willRestart,
  type ContainerRun,
  type RestartPolicy,
} from '../../localcluster/kubelet/lifecycle.js';
import { initialTracker, observe, probeTiming } from '../../localcluster/kubelet/probe-state.js';
import { computePodStatus, podPhase, type StatusInput } from '../../localcluster/kubelet/status.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const backoff = { initialMs: 1_000, maxMs: 10_000 };

const running = (r: ContainerRun, pid = 100, at = T0): ContainerRun => recordStart(r, pid, at);
const exited = (r: ContainerRun, code: number, policy: RestartPolicy = 'Always', at = T0 + 1_000): ContainerRun =>
  recordExit(r, { exitCode: code }, at, policy, backoff);

function input(over: Partial<StatusInput>): StatusInput {
  return {
    podName: 'p',
    policy: 'Always',
    init: [],
    app: [],
    podIP: '127.0.1.2',
    hostIP: '127.0.0.1',
    startTime: kubeTime(T0),
    terminating: false,
    readinessGates: [],
    previousConditions: [],
    nowMs: T0 + 2_000,
    ...over,
  };
}

describe('restart back-off', () => {
  it('restarts the first time at once, then doubles up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => restartDelayMs(n, backoff))).toEqual([0, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it('grows with crashes in a row and resets after a long run', () => {
    let r = newRun('c', 'app', 'img');
    r = exited(running(r), 1);
    expect(r.notBeforeMs).toBe(T0 + 1_000); // first restart: no wait
    r = exited(running(r, 101, T0 + 1_000), 1, 'Always', T0 + 1_500);
    expect(r.notBeforeMs).toBe(T0 + 1_500 + 1_000);
    r = exited(running(r, 102, T0 + 3_000), 1, 'Always', T0 + 3_100);
    expect(r.notBeforeMs).toBe(T0 + 3_100 + 2_000);
    r = exited(running(r, 103, T0 + 10_000), 1, 'Always', T0 + 40_000); // ran 30 s ≥ 2 × cap
    expect(r.notBeforeMs).toBe(T0 + 40_000);
    expect(r.restartCount).toBe(3);
  });
});

describe('container runs', () => {
  it('counts restarts, keeps the last two terminations', () => {
    let r = running(newRun('c', 'app', 'img'));
    expect(r.restartCount).toBe(0);
    r = exited(r, 2);
    expect(r.lastExit).toMatchObject({ exitCode: 2, reason: 'Error', containerID: 'process://100' });
    r = exited(running(r, 200, T0 + 2_000), 0, 'Always', T0 + 3_000);
    expect(r.restartCount).toBe(1);
    expect(r.lastExit).toMatchObject({ exitCode: 0, reason: 'Completed', containerID: 'process://200' });
    expect(r.prevExit?.exitCode).toBe(2);
  });

  it.each<[RestartPolicy, number, boolean]>([
    ['Always', 0, true],
    ['Always', 1, true],
    ['OnFailure', 0, false],
    ['OnFailure', 1, true],
    ['Never', 1, false],
  ])('app container, policy %s, exit %i → restart %s', (policy, code, restart) => {
    expect(willRestart(exited(running(newRun('c', 'app', 'i')), code, policy), policy)).toBe(restart);
  });

  it('restarts a failed init container unless the policy is Never, never a succeeded one', () => {
    const failed = exited(running(newRun('i', 'init', 'x')), 1);
    expect(willRestart(failed, 'Always')).toBe(true);
    expect(willRestart(failed, 'Never')).toBe(false);
    expect(willRestart(exited(running(newRun('i', 'init', 'x')), 0), 'Always')).toBe(false);
  });

  it('restarts a container whose image changed even under Never', () => {
    const r = { ...exited(running(newRun('c', 'app', 'i')), 0, 'Never'), restartRequested: true };
    expect(willRestart(r, 'Never')).toBe(true);
  });
});

describe('planStarts', () => {
  const init = [newRun('i1', 'init', 'x'), newRun('i2', 'init', 'x')];
  const app = [newRun('a', 'app', 'x'), newRun('b', 'app', 'x')];

  it('runs init containers one at a time, in order, then every app container', () => {
    expect(planStarts('Always', init, app, T0).start).toEqual(['i1']);
    const i1running = [running(init[0]!), init[1]!];
    expect(planStarts('Always', i1running, app, T0).start).toEqual([]);
    const i1done = [exited(running(init[0]!), 0), init[1]!];
    expect(planStarts('Always', i1done, app, T0).start).toEqual(['i2']);
    const allDone = [exited(running(init[0]!), 0), exited(running(init[1]!), 0)];
    expect(planStarts('Always', allDone, app, T0).start).toEqual(['a', 'b']);
  });

  it('retries a failed init container after its back-off, and not under Never', () => {
    let failed = exited(running(init[0]!), 1, 'Always', T0);
    failed = exited(running(failed, 2, T0), 1, 'Always', T0 + 100);
    expect(planStarts('Always', [failed, init[1]!], app, T0 + 200)).toEqual({ start: [], wakeAtMs: T0 + 1_100 });
    expect(planStarts('Always', [failed, init[1]!], app, T0 + 1_100).start).toEqual(['i1']);
    expect(planStarts('Never', [exited(running(init[0]!), 1, 'Never'), init[1]!], app, T0 + 5_000).start).toEqual([]);
  });

  it('restarts exited app containers per policy and waits for back-offs', () => {
    const a = exited(running(app[0]!), 0, 'OnFailure');
    const b = exited(exited(running(app[1]!), 1, 'OnFailure'), 1, 'OnFailure'); // second crash: 1 s back-off
    const plan = planStarts('OnFailure', [], [a, { ...b, notBeforeMs: T0 + 5_000 }], T0 + 2_000);
    expect(plan).toEqual({ start: [], wakeAtMs: T0 + 5_000 });
    expect(planStarts('OnFailure', [], [a, { ...b, notBeforeMs: T0 + 5_000 }], T0 + 5_000).start).toEqual(['b']);
  });
});

describe('probe bookkeeping', () => {
  const timing = probeTiming({ successThreshold: 2, failureThreshold: 3 });

  it('has the Kubernetes defaults', () => {
    expect(probeTiming({})).toEqual({ initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1_000, successThreshold: 1, failureThreshold: 3 });
  });

  it('flips only after enough outcomes in a row', () => {
    let t = initialTracker('readiness');
    expect(t.result).toBe('failure');
    t = observe(t, 'success', timing);
    expect(t.result).toBe('failure');
    t = observe(t, 'success', timing);
    expect(t.result).toBe('success');
    t = observe(observe(t, 'failure', timing), 'failure', timing);
    expect(t.result).toBe('success');
    t = observe(observe(t, 'success', timing), 'failure', timing); // the run was broken
    expect(t.result).toBe('success');
    t = observe(observe(observe(t, 'failure', timing), 'failure', timing), 'failure', timing);
    expect(t.result).toBe('failure');
  });

  it('starts liveness as success and startup as unknown', () => {
    expect(initialTracker('liveness').result).toBe('success');
    expect(initialTracker('startup').result).toBe('unknown');
  });
});

describe('pod status', () => {
  const readyApp = { ...running(newRun('app', 'app', 'img:1'), 42), ready: true, started: true };

  it('reports a running, ready pod like the kubelet', () => {
    const s = computePodStatus(input({ app: [readyApp] }));
    expect(s.phase).toBe('Running');
    expect(s.podIP).toBe('127.0.1.2');
    expect(s.podIPs).toEqual([{ ip: '127.0.1.2' }]);
    expect(s.hostIP).toBe('127.0.0.1');
    expect(Object.fromEntries(s.conditions.map((c) => [c.type, c.status]))).toEqual({
      Initialized: 'True',
      Ready: 'True',
      ContainersReady: 'True',
      PodScheduled: 'True',
    });
    expect(s.containerStatuses).toEqual([
      {
        name: 'app',
        image: 'img:1',
        imageID: '',
        containerID: 'process://42',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: kubeTime(T0) } },
        lastState: {},
      },
    ]);
  });

  it('is Pending with PodInitializing while init containers run', () => {
    const s = computePodStatus(input({ init: [running(newRun('i', 'init', 'x'))], app: [newRun('app', 'app', 'x')] }));
    expect(s.phase).toBe('Pending');
    const init = s.conditions.find((c) => c.type === 'Initialized');
    expect(init).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [i]' });
    expect(s.containerStatuses[0]?.state).toEqual({ waiting: { reason: 'PodInitializing' } });
    expect(s.initContainerStatuses[0]?.state.running).toBeDefined();
  });

  it('shows CrashLoopBackOff with the last termination while waiting to restart', () => {
    const crashed = { ...exited(running(newRun('app', 'app', 'x')), 3), notBeforeMs: T0 + 6_000 };
    const s = computePodStatus(input({ app: [crashed] }));
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses[0]?.state.waiting).toEqual({ reason: 'CrashLoopBackOff', message: 'back-off 4s restarting failed container=app pod=p' });
    expect(s.containerStatuses[0]?.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' });
  });

  it('reports Succeeded / Failed for finished pods, and terminated states', () => {
    const ok = exited(running(newRun('a', 'app', 'x')), 0, 'OnFailure');
    const bad = exited(running(newRun('b', 'app', 'x')), 1, 'Never');
    expect(podPhase(input({ policy: 'OnFailure', app: [ok] }))).toBe('Succeeded');
    expect(podPhase(input({ policy: 'Never', app: [ok, bad] }))).toBe('Failed');
    expect(podPhase(input({ policy: 'OnFailure', app: [ok, exited(running(newRun('b', 'app', 'x')), 1, 'OnFailure')] }))).toBe('Running');
    const s = computePodStatus(input({ policy: 'Never', app: [bad] }));
    expect(s.containerStatuses[0]?.state.terminated?.exitCode).toBe(1);
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
  });

  it('fails a pod whose init container failed under Never', () => {
    expect(podPhase(input({ policy: 'Never', init: [exited(running(newRun('i', 'init', 'x')), 1, 'Never')], app: [newRun('a', 'app', 'x')] }))).toBe('Failed');
  });

  it('shows terminated states during deletion instead of back-off', () => {
    const stopped = exited(running(newRun('a', 'app', 'x')), 143);
    const s = computePodStatus(input({ app: [stopped], terminating: true }));
    expect(s.containerStatuses[0]?.state.terminated?.exitCode).toBe(143);
  });

  it('keeps transition times of unchanged conditions and other writers\' conditions', () => {
    const prev = [
      { type: 'Ready', status: 'True', lastTransitionTime: new Date(T0 - 60_000) },
      { type: 'ContainersReady', status: 'False', lastTransitionTime: '2029-12-31T23:00:00Z' },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: '2029-12-31T22:00:00Z' },
      { type: 'shoal.dev/gate', status: 'True', lastTransitionTime: '2029-12-31T21:00:00Z' },
    ];
    const s = computePodStatus(input({ app: [readyApp], previousConditions: prev, readinessGates: ['shoal.dev/gate'] }));
    const byType = Object.fromEntries(s.conditions.map((c) => [c.type, c]));
    expect(byType.Ready?.lastTransitionTime).toBe(kubeTime(T0 - 60_000));
    expect(byType.ContainersReady?.lastTransitionTime).toBe(kubeTime(T0 + 2_000)); // False → True now
    expect(byType.PodScheduled?.lastTransitionTime).toBe('2029-12-31T22:00:00Z');
    expect(byType['shoal.dev/gate']).toMatchObject({ status: 'True', lastTransitionTime: '2029-12-31T21:00:00Z' });
  });

  it('holds Ready back while a readiness gate is not True', () => {
    const s = computePodStatus(input({ app: [readyApp], readinessGates: ['shoal.dev/gate'] }));
    expect(s.conditions.find((c) => c.type === 'ContainersReady')?.status).toBe('True');
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady' });
  });

  it('has no podIPs before an IP is assigned', () => {
    const s = computePodStatus(input({ podIP: null, app: [newRun('a', 'app', 'x')] }));
    expect(s.podIPs).toBeNull();
    expect(s.containerStatuses[0]?.state).toEqual({ waiting: { reason: 'ContainerCreating' } });
  });
});
