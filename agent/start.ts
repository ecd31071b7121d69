// Wires coordination into a running agent. At once (no API server needed): the local probe, the
// /switchover and /prestop routes, the cluster part of /status. Then, in the background and retried
// until it works: the mesh Secret (token + replication password), the mesh on the agent's port,
// pod and StatefulSet watches feeding it, heartbeats, the command executor, self-fencing, and the
// Lease election whose holder runs the coordinator loop. Nothing here touches Tarantool when the API
// server is unreachable: masters stay masters, the mesh keeps running on what the watches last saw.
import type { Logger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { leaseName } from '../common/names.js';
import type { AgentConfig } from './config.js';
import { emptyState } from './decide/reconcile.js';
import { deriveTimings, fenceDeadline } from './decide/timings.js';
import type { PersistedState, Timings } from './decide/model.js';
import type { AgentMetrics } from './http/metrics.js';
import { mountControlRoutes } from './http/control-routes.js';
import type { AgentServer } from './http/server.js';
import type { LocalInstance } from './instance/local.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { isConflict, isNotFound } from '../common/kube/errors.js';
import { EventRecorder } from '../common/kube/events.js';
import { namespaced, type Resources } from '../common/kube/resources.js';
import { unsupportedVersion } from './tarantool/version.js';
import { PeerWatcher } from './kube/peers.js';
import { getOrCreateMeshSecret, replicationPassword } from './kube/secret.js';
import { StatefulSetWatcher } from './kube/statefulsets.js';
import { LeaderElector } from './lease/election.js';
import { kubeLeaseApi } from './lease/lease-api.js';
import { electionTimings } from './lease/timing.js';
import { sleep } from '../common/time.js';
import { Mesh } from './mesh/mesh.js';
import { MeshCertificates, type CertificateSource } from './mesh/certificates.js';
import type { MeshCredentials } from './mesh/server.js';
import { ShoalError } from '../common/errors.js';
import { StateStore } from './state/store.js';
import { CommandExecutor } from './member/commands.js';
import { Coordinator } from './coordinator/loop.js';
import { followSymptoms } from './member/symptom-follower.js';
import { FORWARDED_HEADER, Handover } from './member/handover.js';
import { readPod, terminationVerdict } from './member/termination.js';
import { KubeAccess } from './http/kube-access.js';
import { ControlMetrics } from './coordinator/metrics.js';
import { Observer } from './member/observer.js';
import { settledWithin } from './util/bounded.js';
import { LocalProbe, toWireInstance, type LocalSnapshot } from './member/probe.js';
import { SelfFencer } from './member/self-fence.js';
import { decodePersistedState, persistedLens } from './wire/state-codec.js';
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
  /** Where mesh certificates come from; default the webhook named by SHOAL_MESH_CA_URL. */
  certificates?: CertificateSource;
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

/** Records a Kubernetes Event on a replica set's StatefulSet. */
type RecordEvent = (replicaset: string, type: 'Normal' | 'Warning', reason: string, message: string) => void;

/** What runs once the mesh Secret is read: the mesh, the coordinator and the Lease election. */
interface Coordination {
  mesh: Mesh;
  coordinator: Coordinator;
  elector: LeaderElector;
  /** The election's run (it releases the Lease when it ends, if configured to). */
  electing: Promise<void>;
}

/**
 * The coordination that exists only after the Secret is read, for the parts started before it
 * (they answer "not yet" until then). Set once.
 */
class Pending<T> {
  private value: T | null = null;
  set(v: T): void {
    if (this.value !== null) throw new Error('set twice');
    this.value = v;
  }
  get(): T | null {
    return this.value;
  }
}

export function startControl(agent: AgentParts, log: Logger, opts: ControlOptions = {}): Control {
  const { config, instance, http } = agent;
  const timings = deriveTimings(config.timings); // throws with the fix when the relations cannot hold
  const kube = namespaced(new KubeClient(loadKubeConfig({ env: opts.env ?? process.env })), config.namespace);
  const stopping = new AbortController();
  const signal = stopping.signal;
  const metrics = new ControlMetrics(agent.metrics.registry);
  const events = new EventRecorder({ kube, host: config.pod, logger: log.child({ module: 'events' }) });
  const peers = new PeerWatcher(kube, config.cluster, { logger: log.child({ module: 'pods' }) });
  const sets = new StatefulSetWatcher(kube, config.cluster, { logger: log.child({ module: 'statefulsets' }) });
  const record = statefulSetEvents(config, events, sets);
  const coordination = new Pending<Coordination>();

  // At once, without the API server: the local probe, /status's cluster part, /switchover and /prestop.
  const receiver = topologyReceiver(agent, log, coordination);
  const probe = localProbe(agent, timings, log, receiver, record);
  probe.start(signal);
  http.setClusterStatusProvider({ clusterStatus: () => receiver.clusterStatus() });
  const handover = handoverFor(agent, log, coordination, peers, receiver, kube);
  mountControlRoutes(http.app, {
    access: new KubeAccess({ client: kube.client, logger: log.child({ module: 'access' }) }),
    namespace: config.namespace,
    switchover: (req, caller, s) => handover.switchover(req, caller, s),
    prestop: (s) => handover.prestopHook(config.timings.prestopTimeoutMs, s),
    switchoverTimeoutMs: timings.switchoverTimeoutMs,
    prestopTimeoutMs: config.timings.prestopTimeoutMs,
    forwardedHeader: FORWARDED_HEADER,
    logger: log.child({ module: 'http' }),
  });

  // In the background, retried until it works: the Secret, the mesh certificate, then everything that needs them.
  let renewing: Promise<void> = Promise.resolve();
  const started = (async (): Promise<void> => {
    const secret = await retry('read the mesh Secret', () => getOrCreateMeshSecret(kube, config.cluster, log, signal), signal, log);
    if (!secret) return;
    instance.setCredentials({ user: config.replicationUser, password: config.replicationPassword ?? replicationPassword(secret.token) });
    const certificates = opts.certificates ?? meshCertificates(config, log);
    const credentials = await certificates.obtain(signal);
    const c = await startCoordination({ agent, log, opts, kube, timings, metrics, record, peers, sets, probe, receiver, credentials }, signal);
    coordination.set(c);
    renewing = certificates.renewLoop(credentials, (next) => c.mesh.setCredentials(next), signal);
    log.info({ peersKnown: peers.current.size, meshPort: config.meshPort }, 'coordination started (mesh, watches, election)');
  })().catch((err: unknown) => {
    if (!signal.aborted) log.error({ err: errorMessage(err) }, 'coordination failed to start; this agent only serves its local endpoints');
  });

  const stop = memo(async (): Promise<void> => {
    // Every step is bounded on its own; one that still hangs is named and left behind, so that
    // stopping always ends (a test tear-down once waited minutes here under heavy load).
    const step = async (what: string, p: Promise<unknown>, ms: number): Promise<void> => {
      if (!(await settledWithin(p, ms))) log.error({ step: what, ms }, `stopping: ${what} did not finish in time; going on without it`);
    };
    await step('the hand-over', handover.beforeStop(config.timings.prestopTimeoutMs), config.timings.prestopTimeoutMs + STOP_STEP_MS);
    stopping.abort();
    await step('the start-up', started, STOP_STEP_MS);
    await step('the certificate renewal', renewing, STOP_STEP_MS);
    await step('the Lease release', coordination.get()?.electing ?? Promise.resolve(), STOP_STEP_MS); // releases the Lease when configured to
    await step('closing the mesh and the event recorder', Promise.allSettled([coordination.get()?.mesh.close(), events.close()]), STOP_STEP_MS);
  });
  return {
    started,
    isLeader: () => coordination.get()?.elector.isLeader() ?? false,
    term: () => coordination.get()?.mesh.highestTerm().term,
    stop,
  };
}

/** `f` run on the first call only; later calls get the same promise (stop() is idempotent). */
function memo<T>(f: () => Promise<T>): () => Promise<T> {
  const first: Array<Promise<T>> = [];
  return () => (first[0] ??= f());
}

/** Events on the replica set's StatefulSet ('' = this agent's own). */
function statefulSetEvents(config: AgentConfig, events: EventRecorder, sets: StatefulSetWatcher): RecordEvent {
  return (replicaset, type, reason, message) => {
    const name = replicaset || config.replicaset;
    const uid = sets.current.get(name)?.uid;
    events.record({ kind: 'StatefulSet', name, ...(uid ? { uid } : {}) }, { type, reason, message });
  };
}

function topologyReceiver(agent: AgentParts, log: Logger, coordination: Pending<Coordination>): TopologyReceiver {
  return new TopologyReceiver({
    deliver: (t, o) => agent.instance.topology(t, o),
    shard: (v, o) => agent.instance.setSharding(v, o),
    logger: log.child({ module: 'topology' }),
    replicaset: agent.config.replicaset,
    peers: () => coordination.get()?.mesh.peers() ?? [],
    knownTerm: () => coordination.get()?.mesh.highestTerm().term ?? 0,
    leader: () => {
      const elector = coordination.get()?.elector;
      return { pod: elector?.leader() ?? '', self: elector?.isLeader() ?? false };
    },
  });
}

function localProbe(agent: AgentParts, timings: Timings, log: Logger, receiver: TopologyReceiver, record: RecordEvent): LocalProbe {
  const { config, instance } = agent;
  const watchdog = new WatchdogArming(instance, fenceDeadline(timings), config.timings.statusTimeoutMs, log);
  const unsupported = new UnsupportedVersion(config, log, record);
  return new LocalProbe({
    instance,
    logger: log.child({ module: 'probe' }),
    intervalMs: timings.heartbeatIntervalMs,
    timeoutMs: config.timings.statusTimeoutMs,
    onSnapshot: (s) => {
      receiver.local(s);
      watchdog.arm(s);
      unsupported.refuse(s);
    },
  });
}

/**
 * Each Tarantool process gets the dead-agent switch armed once, at the self-fence deadline: if this
 * agent dies, its master still goes read-only before a failover can promote another.
 */
class WatchdogArming {
  private armedPid: number | null = null;
  private arming = false;
  constructor(
    private readonly instance: LocalInstance,
    private readonly deadlineMs: number,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  arm(s: LocalSnapshot): void {
    const pid = s.state?.pid ?? null;
    if (pid === null || pid === this.armedPid || this.arming) return;
    this.arming = true;
    this.instance
      .armWatchdog(this.deadlineMs / 1000, { timeoutMs: this.timeoutMs })
      .then(() => {
        this.armedPid = pid;
        this.log.info({ pid, seconds: this.deadlineMs / 1000 }, 'armed the Tarantool watchdog (read-only if this agent goes silent)');
      })
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'could not arm the Tarantool watchdog; retrying'))
      .finally(() => {
        this.arming = false;
      });
  }
}

/**
 * A Tarantool version Shoal does not drive: said once per process, in the log and as a Warning
 * Event; the probe reports it 'unsupported', so the coordinator never configures it.
 */
class UnsupportedVersion {
  private refusedPid: number | null = null;
  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly record: RecordEvent,
  ) {}

  refuse(s: LocalSnapshot): void {
    const reason = unsupportedVersion(s.state?.version);
    if (reason === null || s.state === null || s.state.pid === this.refusedPid) return;
    this.refusedPid = s.state.pid;
    this.log.error({ version: s.state.version, pid: s.state.pid }, reason);
    this.record(this.config.replicaset, 'Warning', 'UnsupportedTarantool', `${this.config.pod}: ${reason}`);
  }
}

/** How long /prestop waits for the pod watch to show this pod's deletionTimestamp before reading the pod. */
const PRESTOP_WATCH_GRACE_MS = 1_000;
/** Bound of that direct read. */
const PRESTOP_READ_TIMEOUT_MS = 5_000;

function handoverFor(agent: AgentParts, log: Logger, coordination: Pending<Coordination>, peers: PeerWatcher, receiver: TopologyReceiver, kube: Resources): Handover {
  const { config, instance } = agent;
  return new Handover({
    self: config.pod,
    replicaset: config.replicaset,
    localCoordinator: () => {
      const c = coordination.get();
      return c?.coordinator.active && c.elector.isLeader() ? c.coordinator : null;
    },
    leader: () => coordination.get()?.elector.leader() ?? '',
    forward: (pod, r) => {
      const c = coordination.get();
      return c ? c.mesh.request(pod, r) : Promise.reject(new ShoalError('this agent has not joined the mesh yet', 'retry shortly'));
    },
    termination: (sigterm, s) =>
      terminationVerdict(
        {
          selfUid: config.podUid ?? null,
          watched: () => peers.current.get(config.pod) ?? null,
          read: (rs) => readPod(kube, config.pod, PRESTOP_READ_TIMEOUT_MS, rs),
          watchGraceMs: PRESTOP_WATCH_GRACE_MS,
        },
        sigterm,
        s,
      ),
    writable: async (s) => (await instance.state({ signal: s, timeoutMs: config.timings.statusTimeoutMs })).ro === false,
    publishedMaster: () => receiver.masterOf(config.replicaset),
    logger: log.child({ module: 'handover' }),
  });
}

interface CoordinationDeps {
  agent: AgentParts;
  log: Logger;
  opts: ControlOptions;
  kube: Resources;
  timings: Timings;
  metrics: ControlMetrics;
  record: RecordEvent;
  peers: PeerWatcher;
  sets: StatefulSetWatcher;
  probe: LocalProbe;
  receiver: TopologyReceiver;
  credentials: MeshCredentials;
}

/** In this order: the state store, the mesh and what feeds it, self-fencing, the coordinator, the election. */
async function startCoordination(d: CoordinationDeps, signal: AbortSignal): Promise<Coordination> {
  const { agent, log, kube, timings, metrics, peers, sets, probe } = d;
  const { config, instance } = agent;
  const store = new StateStore<PersistedState>({
    kube,
    cluster: config.cluster,
    decode: decodePersistedState,
    initial: emptyState,
    lens: persistedLens,
    logger: log.child({ module: 'state' }),
    requestTimeoutMs: 5_000,
  });
  const mesh = new Mesh({
    self: config.pod,
    namespace: config.namespace,
    cluster: config.cluster,
    credentials: d.credentials,
    logger: log,
    registry: agent.metrics.registry,
    termAuthority: (s) => store.currentTerm(s),
    heartbeatIntervalMs: timings.heartbeatIntervalMs,
    staleAfterMs: timings.heartbeatTimeoutMs,
  });
  await mesh.listen(config.bindHost, config.meshPort);
  // A /switchover another agent forwards arrives here, over mTLS; the sender is who its certificate names.
  mesh.serveHttp((req, res, pod) => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/switchover') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('the mesh port serves only the websocket and forwarded POST /switchover\n');
      return;
    }
    req.headers[FORWARDED_HEADER] = pod;
    agent.http.app(req, res);
  });
  const observer = new Observer({
    namespace: config.namespace,
    cluster: config.cluster,
    self: config.pod,
    listenPort: config.listenPort,
    pods: () => peers.current,
    statefulSets: () => sets.current,
    sees: () => mesh.reachability().sees,
    local: () => probe.latest(),
    heartbeatTimeoutMs: timings.heartbeatTimeoutMs,
  });
  mesh.onHeartbeat((hb) => observer.heartbeat(hb));
  const executor = new CommandExecutor({
    instance,
    self: config.pod,
    logger: log.child({ module: 'commands' }),
    knownTerm: () => mesh.highestTerm().term,
    refresh: () => probe.refresh(),
  });
  mesh.onCommand((cmd, ctx) => executor.handle(cmd, ctx));
  mesh.onTopology((push) => d.receiver.receive(push));
  // The watch cache survives API outages: the mesh keeps its peers.
  const retarget = (): void =>
    mesh.setPeers([...peers.current.values()].filter((p) => p.ip !== null).map((p) => ({ pod: p.pod, address: `${p.ip?.includes(':') ? `[${p.ip}]` : p.ip}:${config.meshPort}` })));
  // Once the pods were listed, the count holds through API outages (the watch cache stays).
  let peersListed = false;
  peers.onChange((change) => {
    if (change.type === 'synced') peersListed = true;
    retarget();
  });
  void peers.run(signal);
  void sets.run(signal);
  mesh.startHeartbeats(() => toWireInstance(probe.latest()));
  const fencer = new SelfFencer({
    reachability: () => ({ ...mesh.reachability(), known: peersListed }),
    local: () => probe.latest(),
    fence: async () => {
      await instance.fence({ timeoutMs: timings.fenceBudgetMs });
      await probe.refresh();
    },
    renewLease: () => instance.renewWatchdog({ timeoutMs: fenceDeadline(timings) / 2 }),
    timings,
    logger: log.child({ module: 'self-fence' }),
    onFenced: (reason) => {
      metrics.selfFences.inc();
      d.record(config.replicaset, 'Warning', 'SelfFence', `${config.pod}: ${reason}`);
    },
  });
  fencer.start(signal);

  const coordinator = new Coordinator({
    self: config.pod,
    namespace: config.namespace,
    cluster: config.cluster,
    store,
    observer,
    mesh,
    timings,
    metrics,
    logger: log.child({ module: 'coordinator' }),
    actions: {
      store,
      send: (pod, req, timeoutMs, s) => mesh.sendCommand(pod, req, timeoutMs, s),
      deletePod: (pod, uid, s) => deletePod(kube, pod, uid, s),
      event: d.record,
      acknowledged: (pod, t, at) => observer.acknowledged(pod, t, at),
      metrics,
      logger: log.child({ module: 'coordinator' }),
    },
    onTerm: (term) => metrics.term.set(term),
  });
  followSymptoms(
    {
      observe: (members, now) => observer.follow(members, now),
      coordinating: () => coordinator.active,
      members: () => d.receiver.knownMembers(),
      intervalMs: timings.coordinatorIntervalMs,
    },
    signal,
  );
  const elector = new LeaderElector({
    api: kubeLeaseApi(kube, leaseName(config.cluster), config.cluster),
    identity: config.pod,
    uid: config.podUid ?? '',
    timings: electionTimings(config.timings.leaseSeconds),
    logger: log.child({ module: 'lease' }),
    releaseOnCancel: d.opts.releaseLease ?? true,
    // Only the mesh's majority side coordinates; a cut-off coordinator releases the Lease.
    mayLead: (holding) => fencer.mayCoordinate(holding),
    onStartedLeading: (s) => void lead(coordinator, s, log),
    onStoppedLeading: (reason) => log.warn({ reason }, 'no longer the coordinator'),
  });
  return { mesh, coordinator, elector, electing: elector.run(signal) };
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

/** The webhook's mesh CA, as the pod's env names it. */
function meshCertificates(config: AgentConfig, log: Logger): CertificateSource {
  if (!config.meshCa) {
    throw new ShoalError('SHOAL_MESH_CA_URL and SHOAL_MESH_CA_CERT are not set: this agent cannot get a mesh certificate', 'recreate the pod so that shoal-webhook (with its mesh CA) injects them');
  }
  return new MeshCertificates({ ...config.meshCa, logger: log });
}
