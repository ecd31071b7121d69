// Wires coordination into a running agent. At once (no API server needed): the local probe, the
// /switchover and /prestop routes, the cluster part of /status. Then, in the background and retried
// until it works: the mesh Secret (token + replication password), the mesh on the agent's port,
// pod and StatefulSet watches feeding it, heartbeats, the command executor, self-fencing, and the
// Lease election whose holder runs the coordinator loop. Nothing here touches Tarantool when the API
// server is unreachable: masters stay masters, the mesh keeps running on what the watches last saw.
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import { leaseName } from '../shared/names.js';
import type { AgentConfig } from './config.js';
import { emptyState } from './decide/reconcile.js';
import { fenceDeadline } from './decide/timings.js';
import type { PersistedState } from './decide/model.js';
import type { AgentMetrics } from './http/metrics.js';
import { mountControlRoutes } from './http/control-routes.js';
import type { AgentServer } from './http/server.js';
import type { LocalInstance } from './instance/local.js';
import { KubeClient } from '../shared/kube/client.js';
import { loadKubeConfig } from '../shared/kube/config.js';
import { isConflict, isNotFound } from '../shared/kube/errors.js';
import { EventRecorder } from '../shared/kube/events.js';
import { namespaced, type Resources } from '../shared/kube/resources.js';
import { unsupportedVersion } from './tarantool/version.js';
import { PeerWatcher } from './kube/peers.js';
import { getOrCreateMeshSecret, replicationPassword } from './kube/secret.js';
import { StatefulSetWatcher } from './kube/statefulsets.js';
import { LeaderElector } from './lease/election.js';
import { kubeLeaseApi } from './lease/lease-api.js';
import { sleep } from '../shared/time.js';
import { Mesh } from './mesh/mesh.js';
import { StateStore } from './state/store.js';
import { CommandExecutor } from './member/commands.js';
import { Coordinator } from './coordinator/loop.js';
import { followSymptoms } from './member/symptom-follower.js';
import { FORWARDED_HEADER, Handover } from './member/handover.js';
import { ControlMetrics } from './coordinator/metrics.js';
import { Observer } from './member/observer.js';
import { settledWithin } from './util/bounded.js';
import { LocalProbe, toWireInstance, type LocalSnapshot } from './member/probe.js';
import { SelfFencer } from './member/self-fence.js';
import { decodePersistedState, persistedLens } from './wire/state-codec.js';
import { controlTimings } from './timings.js';
import { TopologyReceiver } from './member/topology.js';

/** The parts of a started agent (runtime.ts) that coordination plugs into. */
export interface AgentParts {
  config: AgentConfig;
  instance: LocalInstance;
  metrics: AgentMetrics;
  http: AgentServer;
}

export interface ControlOptions {
  /** Where loadKubeConfig looks (in-cluster variables or KUBECONFIG); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Clear the Lease holder on stop (default true). false behaves like a crash: others wait for expiry. */
  releaseLease?: boolean;
}

export interface Control {
  /** Resolves once the mesh runs (the Secret was read); never rejects. */
  readonly started: Promise<void>;
  isLeader(): boolean;
  /** The newest term this agent knows (for log lines). */
  term(): number | undefined;
  stop(): Promise<void>;
}

/** Bound of each shutdown step after the hand-over (each is bounded itself; this catches a hang). */
const STOP_STEP_MS = 10_000;

export function startControl(agent: AgentParts, log: Logger, opts: ControlOptions = {}): Control {
  const { config, instance, http } = agent;
  const timings = controlTimings(config.timings); // throws with the fix when the relations cannot hold
  const kube = namespaced(new KubeClient(loadKubeConfig({ env: opts.env ?? process.env })), config.namespace);
  const stopping = new AbortController();
  const signal = stopping.signal;
  const metrics = new ControlMetrics(agent.metrics.registry);
  const events = new EventRecorder({ kube, host: config.pod, logger: log.child({ module: 'events' }) });

  let mesh: Mesh | undefined;
  let token: string | null = null;
  let elector: LeaderElector | undefined;
  let coordinator: Coordinator | undefined;
  let electing: Promise<void> = Promise.resolve();
  const peers = new PeerWatcher(kube, config.cluster, { logger: log.child({ module: 'pods' }) });
  const sets = new StatefulSetWatcher(kube, config.cluster, { logger: log.child({ module: 'statefulsets' }) });

  const record = (replicaset: string, type: 'Normal' | 'Warning', reason: string, message: string): void => {
    const name = replicaset || config.replicaset;
    const uid = sets.current.get(name)?.uid;
    events.record({ kind: 'StatefulSet', name, ...(uid ? { uid } : {}) }, { type, reason, message });
  };

  // Each Tarantool process gets the dead-agent switch armed once, at the self-fence deadline: if
  // this agent dies, its master still goes read-only before a failover can promote another.
  let armedPid: number | null = null;
  let arming = false;
  const armWatchdog = (s: LocalSnapshot): void => {
    const pid = s.state?.pid ?? null;
    if (pid === null || pid === armedPid || arming) return;
    arming = true;
    instance
      .armWatchdog(fenceDeadline(timings.core) / 1000, { timeoutMs: config.timings.statusTimeoutMs })
      .then(() => {
        armedPid = pid;
        log.info({ pid, seconds: fenceDeadline(timings.core) / 1000 }, 'armed the Tarantool watchdog (read-only if this agent goes silent)');
      })
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not arm the Tarantool watchdog; retrying'))
      .finally(() => {
        arming = false;
      });
  };

  // A Tarantool version Shoal does not drive: said once per process, in the log and as a Warning
  // Event; the probe reports it 'unsupported', so the coordinator never configures it.
  let refusedPid: number | null = null;
  const refuseUnsupported = (s: LocalSnapshot): void => {
    const reason = unsupportedVersion(s.state?.version);
    if (reason === null || s.state === null || s.state.pid === refusedPid) return;
    refusedPid = s.state.pid;
    log.error({ version: s.state.version, pid: s.state.pid }, reason);
    record(config.replicaset, 'Warning', 'UnsupportedTarantool', `${config.pod}: ${reason}`);
  };

  const receiver = new TopologyReceiver({
    deliver: (t, o) => instance.topology(t, o),
    logger: log.child({ module: 'topology' }),
    replicaset: config.replicaset,
    peers: () => mesh?.peers() ?? [],
    knownTerm: () => mesh?.highestTerm().term ?? 0,
    leader: () => ({ pod: elector?.leader() ?? '', self: elector?.isLeader() ?? false }),
  });
  const probe = new LocalProbe({
    instance,
    logger: log.child({ module: 'probe' }),
    intervalMs: timings.heartbeatIntervalMs,
    timeoutMs: config.timings.statusTimeoutMs,
    onSnapshot: (s) => {
      receiver.local(s);
      armWatchdog(s);
      refuseUnsupported(s);
    },
  });
  probe.start(signal);
  http.setClusterStatusProvider({ clusterStatus: () => receiver.clusterStatus() });

  const handover = new Handover({
    self: config.pod,
    replicaset: config.replicaset,
    localCoordinator: () => (coordinator?.active && elector?.isLeader() ? coordinator : null),
    leader: () => elector?.leader() ?? '',
    agentAddress: (pod) => {
      const ip = peers.current.get(pod)?.ip;
      return ip ? `${ip.includes(':') ? `[${ip}]` : ip}:${config.port}` : null;
    },
    token: () => token,
    writable: async (s) => (await instance.state({ signal: s, timeoutMs: config.timings.statusTimeoutMs })).ro === false,
    publishedMaster: () => receiver.masterOf(config.replicaset),
    logger: log.child({ module: 'handover' }),
  });
  mountControlRoutes(http.app, {
    token: () => token,
    switchover: (req, forwardedBy, s) => handover.switchover(req, forwardedBy, s),
    prestop: (s) => handover.prestop(config.timings.prestopTimeoutMs, s),
    switchoverTimeoutMs: timings.switchoverTimeoutMs,
    prestopTimeoutMs: config.timings.prestopTimeoutMs,
    forwardedHeader: FORWARDED_HEADER,
    logger: log.child({ module: 'http' }),
  });

  const started = (async (): Promise<void> => {
    const secret = await retry('read the mesh Secret', () => getOrCreateMeshSecret(kube, config.cluster, log, signal), signal, log);
    if (!secret) return;
    token = secret.token;
    instance.setCredentials({ user: config.replicationUser, password: config.replicationPassword ?? replicationPassword(secret.token) });

    const store = new StateStore<PersistedState>({
      kube,
      cluster: config.cluster,
      decode: decodePersistedState,
      initial: emptyState,
      lens: persistedLens,
      logger: log.child({ module: 'state' }),
      requestTimeoutMs: 5_000,
    });
    const m = new Mesh({
      self: config.pod,
      cluster: config.cluster,
      token: secret.token,
      logger: log,
      registry: agent.metrics.registry,
      termAuthority: (s) => store.currentTerm(s),
      heartbeatIntervalMs: timings.heartbeatIntervalMs,
      staleAfterMs: timings.core.heartbeatTimeoutMs,
    });
    mesh = m;
    m.attach(http.server);
    const observer = new Observer({
      namespace: config.namespace,
      cluster: config.cluster,
      self: config.pod,
      listenPort: config.listenPort,
      pods: () => peers.current,
      statefulSets: () => sets.current,
      sees: () => m.reachability().sees,
      local: () => probe.latest(),
      heartbeatTimeoutMs: timings.core.heartbeatTimeoutMs,
    });
    m.onHeartbeat((hb) => observer.heartbeat(hb));
    const executor = new CommandExecutor({
      instance,
      self: config.pod,
      logger: log.child({ module: 'commands' }),
      knownTerm: () => m.highestTerm().term,
      refresh: () => probe.refresh(),
    });
    m.onCommand((cmd, ctx) => executor.handle(cmd, ctx));
    m.onTopology((push) => receiver.receive(push));
    // Peers are dialled at their pod IP on the agent port (SPEC §4); the watch cache survives API outages.
    const retarget = (): void =>
      m.setPeers([...peers.current.values()].filter((p) => p.ip !== null).map((p) => ({ pod: p.pod, address: `${p.ip?.includes(':') ? `[${p.ip}]` : p.ip}:${config.port}` })));
    peers.onChange(retarget);
    void peers.run(signal);
    void sets.run(signal);
    m.startHeartbeats(() => toWireInstance(probe.latest()));
    new SelfFencer({
      reachability: () => m.reachability(),
      local: () => probe.latest(),
      fence: async () => {
        await instance.fence({ timeoutMs: 2_000 });
        await probe.refresh();
      },
      timings: timings.core,
      logger: log.child({ module: 'self-fence' }),
      onFenced: (reason) => {
        metrics.selfFences.inc();
        record(config.replicaset, 'Warning', 'SelfFence', `${config.pod}: ${reason}`);
      },
    }).start(signal);

    coordinator = new Coordinator({
      self: config.pod,
      namespace: config.namespace,
      cluster: config.cluster,
      store,
      observer,
      mesh: m,
      timings: timings.core,
      intervalMs: timings.coordinatorIntervalMs,
      metrics,
      logger: log.child({ module: 'coordinator' }),
      actions: {
        store,
        send: (pod, req, timeoutMs, s) => m.sendCommand(pod, req, timeoutMs, s),
        deletePod: (pod, uid, s) => deletePod(kube, pod, uid, s),
        event: record,
        acknowledged: (pod, t, at) => observer.acknowledged(pod, t, at),
        metrics,
        logger: log.child({ module: 'coordinator' }),
        timings: timings.core,
      },
      onTerm: (term) => metrics.term.set(term),
    });
    const c = coordinator;
    followSymptoms(
      {
        observe: (members, now) => observer.follow(members, now),
        coordinating: () => c.active,
        members: () => receiver.knownMembers(),
        intervalMs: timings.coordinatorIntervalMs,
      },
      signal,
    );
    elector = new LeaderElector({
      api: kubeLeaseApi(kube, leaseName(config.cluster), config.cluster),
      identity: config.pod,
      uid: config.podUid ?? '',
      timings: timings.lease,
      logger: log.child({ module: 'lease' }),
      releaseOnCancel: opts.releaseLease ?? true,
      onStartedLeading: (s) => void lead(c, s, log),
      onStoppedLeading: (reason) => log.warn({ reason }, 'no longer the coordinator'),
    });
    electing = elector.run(signal);
    log.info({ peersKnown: peers.current.size }, 'coordination started (mesh, watches, election)');
  })().catch((err: unknown) => {
    if (!signal.aborted) log.error({ err: errorMessage(err) }, 'coordination failed to start; this agent only serves its local endpoints');
  });

  let stopped: Promise<void> | undefined;
  return {
    started,
    isLeader: () => elector?.isLeader() ?? false,
    term: () => mesh?.highestTerm().term,
    stop(): Promise<void> {
      stopped ??= (async () => {
        // Every step is bounded on its own; one that still hangs is named and left behind, so that
        // stopping always ends (a test tear-down once waited minutes here under heavy load).
        const step = async (what: string, p: Promise<unknown>, ms: number): Promise<void> => {
          if (!(await settledWithin(p, ms))) log.error({ step: what, ms }, `stopping: ${what} did not finish in time; going on without it`);
        };
        await step('the hand-over', handover.beforeStop(config.timings.prestopTimeoutMs), config.timings.prestopTimeoutMs + STOP_STEP_MS);
        stopping.abort();
        await step('the start-up', started, STOP_STEP_MS);
        await step('the Lease release', electing, STOP_STEP_MS); // releases the Lease when configured to
        await step('closing the mesh and the event recorder', Promise.allSettled([mesh?.close(), events.close()]), STOP_STEP_MS);
      })();
      return stopped;
    },
  };
}

// The loop of a leader: a coordinator that stops early (a newer term appeared) is restarted with a
// fresh term while the Lease is still held.
async function lead(c: Coordinator, signal: AbortSignal, log: Logger): Promise<void> {
  while (!signal.aborted) {
    const why = await c.run(signal);
    if (signal.aborted) break;
    log.warn({ why }, 'the coordinator loop ended while still holding the Lease; taking a new term in 1 s');
    await sleep(1_000, signal).catch(() => undefined);
  }
}

async function deletePod(kube: Resources, pod: string, uid: string | null, signal: AbortSignal): Promise<'deleted' | 'gone' | 'replaced'> {
  try {
    await kube.pods.delete(pod, uid ? { preconditions: { uid } } : {}, { signal });
    return 'deleted';
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    if (isConflict(err)) return 'replaced'; // the uid precondition failed: a new pod has the name
    throw err;
  }
}

/** Retries `op` with capped backoff until it succeeds or `signal` aborts (then resolves undefined). */
async function retry<T>(what: string, op: () => Promise<T>, signal: AbortSignal, log: Logger): Promise<T | undefined> {
  let last = '';
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (signal.aborted) break;
      const msg = errorMessage(err);
      if (msg !== last) log.warn({ err: msg }, `could not ${what}; retrying`);
      last = msg;
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)), signal).catch(() => undefined);
    }
  }
  return undefined;
}
