// The mesh facade: every agent dials every peer (from the pod watch) and serves /mesh for peers that
// dial it. Heartbeats say what each agent's Tarantool is doing and which peers it hears; commands
// from the coordinator carry its term and are acknowledged; an agent refuses commands of a term
// older than the newest it knows, verifies a newer one against the state ConfigMap, and runs each
// command id at most once.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { meshIdentityFromSan } from '../../common/mesh-identity.js';
import { judgePeer } from './identity.js';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type WebSocket from 'ws';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { VERSION } from '../../common/version.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../../common/time.js';
import { PeerDialer } from './client.js';
import { MeshLink, type Direction } from './link.js';
import { createMeshMetrics, type MeshMetrics } from './metrics.js';
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type Ack, type CommandMessage, type Heartbeat, type InstanceState, type JsonObject, type JsonValue, type MeshMessage, type TopologyPush } from '../wire/mesh-protocol.js';
import { ReplayFilter } from './replay.js';
import { listenMesh, POD_HEADER, type MeshCredentials, type MeshServer } from './server.js';
import { TermGuard, type KnownTerm, type TermAuthority } from './terms.js';
import { LogThrottle } from './throttle.js';

export interface MeshOptions {
  /** This pod. */
  self: string;
  namespace: string;
  cluster: string;
  /** This agent's key and mesh certificate, and the mesh CA (agent/mesh/certificates.ts keeps them current). */
  credentials: MeshCredentials;
  logger: Logger;
  registry?: Registry;
  /** Checks a term newer than any this agent knows against the state ConfigMap. Omitted = trust authenticated peers. */
  termAuthority?: TermAuthority;
  /** Heartbeat period (default 250 ms: well inside the coordinator's 1 s heartbeat timeout). */
  heartbeatIntervalMs?: number;
  /** A peer not heard from for this long is not "seen" (default 1000 ms, the coordinator's heartbeatTimeoutMs). */
  staleAfterMs?: number;
  /** ws ping period; a missed pong terminates the connection (default 2000 ms). */
  pingIntervalMs?: number;
  handshakeTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** Largest message acted on (default 256 KiB); ws closes connections sending frames 4× larger. */
  maxMessageBytes?: number;
  maxConnections?: number;
  agentVersion?: string;
  clock?: () => number;
}

/** Where a peer's agent listens. */
export interface MeshTarget {
  pod: string;
  /** host:port */
  address: string;
}

export interface PeerStatus {
  pod: string;
  /** Some connection to it is open. */
  connected: boolean;
  outbound: boolean;
  inbound: boolean;
  /** Milliseconds since we last heard from it; null = never. */
  lastSeenMs: number | null;
  /** Its last heartbeat (instance state, the peers it sees, its term), or null. */
  heartbeat: Heartbeat | null;
}

export interface Reachability {
  /** Peers (self excluded) heard from within staleAfterMs. */
  sees: string[];
  /**
   * Of those, the peers whose latest heartbeat says they hear this agent too: the links that work
   * both ways. Self-fencing counts these, so a one-way partition cannot keep a master writable.
   */
  mutual: string[];
  /** Peers (self excluded) the pod watch says exist. */
  peers: number;
}

export interface CommandRequest {
  kind: string;
  payload: JsonObject;
  /** The sending coordinator's term. */
  term: number;
  /** Reuse an id to resend a command whose ack was lost (it runs at most once). */
  id?: string;
}

export interface CommandContext {
  /** Aborts when the mesh closes. */
  signal: AbortSignal;
}

export type CommandResult = { ok: true; result?: JsonValue } | { ok: false; error: string };
export type CommandHandler = (cmd: CommandMessage, ctx: CommandContext) => Promise<CommandResult>;

interface Pending {
  pod: string;
  link: MeshLink | null;
  resolve: (ack: Ack) => void;
  reject: (err: Error) => void;
}

interface PeerEntry {
  lastSeenAt: number | null;
  heartbeat: Heartbeat | null;
  /** When `heartbeat` arrived: whom it says the peer hears is only as fresh as that. */
  heartbeatAt: number | null;
}

export class Mesh {
  private readonly log: Logger;
  private readonly metrics: MeshMetrics;
  private readonly throttle = new LogThrottle();
  private readonly guard: TermGuard;
  private readonly replays = new ReplayFilter();
  private readonly clock: () => number;
  private readonly targets = new Map<string, PeerDialer>();
  private readonly outbound = new Map<string, MeshLink>();
  private readonly inbound = new Map<string, MeshLink>();
  private readonly peerInfo = new Map<string, PeerEntry>();
  private readonly pending = new Map<string, Pending>();
  private readonly closing = new AbortController();
  private server: MeshServer | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private commandHandler: CommandHandler | undefined;
  private httpHandler: ((req: IncomingMessage, res: ServerResponse, pod: string) => void) | undefined;
  private topologyHandler: ((push: TopologyPush) => void) | undefined;
  private readonly heartbeatListeners = new Set<(hb: Heartbeat) => void>();
  private seq = 0;
  private readonly o: Required<Omit<MeshOptions, 'registry' | 'termAuthority' | 'clock' | 'credentials'>>;
  private credentials: MeshCredentials;

  constructor(opts: MeshOptions) {
    this.o = {
      self: opts.self,
      namespace: opts.namespace,
      cluster: opts.cluster,
      logger: opts.logger,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 250,
      staleAfterMs: opts.staleAfterMs ?? 1_000,
      pingIntervalMs: opts.pingIntervalMs ?? 2_000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5_000,
      backoff: opts.backoff ?? { ...DEFAULT_BACKOFF, initialMs: 100, maxMs: 5_000 },
      maxMessageBytes: opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxConnections: opts.maxConnections ?? 512,
      agentVersion: opts.agentVersion ?? VERSION,
    };
    if (!opts.credentials.cert || !opts.credentials.key || !opts.credentials.ca) {
      throw new ShoalError('the mesh needs a key, a certificate and the mesh CA', 'the agent gets its certificate from the webhook (SHOAL_MESH_CA_URL); check that it could');
    }
    this.credentials = opts.credentials;
    this.log = opts.logger.child({ component: 'mesh' });
    this.metrics = createMeshMetrics(opts.registry);
    this.guard = new TermGuard(opts.termAuthority);
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Serves /mesh over mTLS on host:port (0 = any free port); resolves with the port. */
  async listen(host: string, port: number): Promise<number> {
    if (this.server) throw new ShoalError('the mesh is already listening');
    const server = await listenMesh(host, port, {
      namespace: this.o.namespace,
      cluster: this.o.cluster,
      credentials: this.credentials,
      known: (pod) => this.targets.has(pod),
      maxPayload: this.o.maxMessageBytes * 4,
      maxConnections: this.o.maxConnections,
      logger: this.log,
      metrics: this.metrics,
      throttle: this.throttle,
      onConnection: (ws, pod) => this.adopt(ws, pod, 'inbound'),
      onRequest: (req, res, pod) => {
        if (this.httpHandler) this.httpHandler(req, res, pod);
        else res.writeHead(404).end();
      },
    });
    if (this.closing.signal.aborted) {
      await server.close();
      throw new ShoalError('the mesh closed while it started listening');
    }
    this.server = server;
    return server.port;
  }

  /** A renewed certificate (or CA bundle): new handshakes, both ways, use it; open links keep theirs. */
  setCredentials(c: MeshCredentials): void {
    this.credentials = c;
    this.server?.setCredentials(c);
  }

  /** The peers to keep connections to (from the pod watch); self is ignored. */
  setPeers(targets: readonly MeshTarget[]): void {
    if (this.closing.signal.aborted) return;
    const wanted = new Map(targets.filter((t) => t.pod !== this.o.self).map((t) => [t.pod, t.address]));
    for (const [pod, dialer] of this.targets) {
      if (!wanted.has(pod)) {
        dialer.stop();
        this.targets.delete(pod);
        this.outbound.get(pod)?.close(1000, 'peer removed');
        this.inbound.get(pod)?.close(1000, 'peer removed');
        this.peerInfo.delete(pod);
      }
    }
    for (const [pod, address] of wanted) {
      const existing = this.targets.get(pod);
      if (existing) {
        existing.retarget(address);
        continue;
      }
      const dialer = new PeerDialer({
        pod,
        address,
        self: this.o.self,
        namespace: this.o.namespace,
        cluster: this.o.cluster,
        credentials: () => this.credentials,
        maxPayload: this.o.maxMessageBytes * 4,
        handshakeTimeoutMs: this.o.handshakeTimeoutMs,
        backoff: this.o.backoff,
        logger: this.log,
        throttle: this.throttle,
        onOpen: (ws) => this.adopt(ws, pod, 'outbound'),
      });
      this.targets.set(pod, dialer);
      dialer.start();
    }
  }

  /** Serves plain HTTPS requests of authenticated peers on the mesh port (`pod`: who sent it, from its certificate). */
  serveHttp(handler: (req: IncomingMessage, res: ServerResponse, pod: string) => void): void {
    this.httpHandler = handler;
  }

  /**
   * An HTTPS request to a peer's mesh port, with this agent's certificate, accepted only from a server
   * whose certificate names `pod`. Rejects when the peer's address is unknown or it cannot be reached.
   */
  request(pod: string, r: { method: string; path: string; headers: Record<string, string>; body: string; signal: AbortSignal }): Promise<{ status: number; body: unknown }> {
    const address = this.targets.get(pod)?.target;
    if (!address) return Promise.reject(new ShoalError(`the address of ${pod}'s agent is unknown`, 'wait for the pod watch to list it'));
    const { key, cert, ca } = this.credentials;
    const checkServerIdentity = (_host: string, peer: PeerCertificate): Error | undefined => {
      const v = judgePeer({ identity: meshIdentityFromSan(peer.subjectaltname), namespace: this.o.namespace, cluster: this.o.cluster, expected: pod, known: () => true });
      return v.ok ? undefined : new ShoalError(`the agent at ${address} is not ${pod}: ${v.detail}`);
    };
    return new Promise((resolve, reject) => {
      const req = httpsRequest(`https://${address}${r.path}`, {
        method: r.method,
        key,
        cert,
        ca,
        minVersion: 'TLSv1.2',
        checkServerIdentity,
        headers: { ...r.headers, [POD_HEADER]: this.o.self, 'content-length': Buffer.byteLength(r.body) },
        signal: r.signal,
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            reject(new ShoalError(`${pod} answered ${res.statusCode} with no JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.on('error', reject);
      req.end(r.body);
    });
  }

  /** The persisted term from the state ConfigMap (the authority): raises what this agent refuses below. */
  observeTerm(term: number, holder: string | null): void {
    this.guard.observe(term, holder);
  }

  highestTerm(): KnownTerm {
    return this.guard.current;
  }

  onCommand(handler: CommandHandler): void {
    this.commandHandler = handler;
  }

  onTopology(handler: (push: TopologyPush) => void): void {
    this.topologyHandler = handler;
  }

  /** Every valid heartbeat received; returns the unsubscribe function. */
  onHeartbeat(listener: (hb: Heartbeat) => void): () => void {
    this.heartbeatListeners.add(listener);
    return () => this.heartbeatListeners.delete(listener);
  }

  /** Sends a heartbeat with `instance` to every connected peer; returns how many it reached. */
  broadcast(instance: InstanceState): number {
    const hb: Heartbeat = {
      type: 'heartbeat',
      v: PROTOCOL_VERSION,
      pod: this.o.self,
      term: this.guard.current.term,
      sentAt: Date.now(),
      agentVersion: this.o.agentVersion,
      sees: this.reachability().sees,
      instance,
    };
    let sent = 0;
    for (const pod of this.targets.keys()) if (this.linkTo(pod)?.send(hb)) sent++;
    return sent;
  }

  /** Broadcasts `state()` every heartbeat interval until close(). */
  startHeartbeats(state: () => InstanceState): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      try {
        this.broadcast(state());
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'could not build a heartbeat');
      }
    }, this.o.heartbeatIntervalMs);
  }

  /** Pushes the cluster topology to every connected peer (and to this agent's own handler). */
  pushTopology(topology: JsonObject, term: number): void {
    const push: TopologyPush = { type: 'topology', v: PROTOCOL_VERSION, term, from: this.o.self, topology };
    for (const pod of this.targets.keys()) this.linkTo(pod)?.send(push);
    void this.receiveTopology(push, null);
  }

  /**
   * Sends a command and waits for its ack. Rejects on timeout, abort, or a connection lost before
   * the ack (the command may then have run: resend with the same `id` — it runs at most once).
   * An ack with ok=false resolves: refusals and failures are answers, not transport errors.
   */
  sendCommand(pod: string, req: CommandRequest, timeoutMs: number, signal?: AbortSignal): Promise<Ack> {
    const id = req.id ?? `${this.o.self}-${req.term}-${++this.seq}-${randomBytes(4).toString('hex')}`;
    const cmd: CommandMessage = { type: 'command', v: PROTOCOL_VERSION, id, term: req.term, from: this.o.self, kind: req.kind, payload: req.payload };
    if (pod === this.o.self) return this.bounded(this.execute(cmd, null), id, timeoutMs, signal);
    const link = this.linkTo(pod);
    if (!link) return Promise.reject(new ShoalError(`no mesh connection to ${pod}`, 'wait for the mesh to reconnect; check the peer agent is running'));
    if (this.pending.has(id)) return Promise.reject(new ShoalError(`command ${id} is already waiting for an ack`));
    const acked = new Promise<Ack>((resolve, reject) => this.pending.set(id, { pod, link, resolve, reject }));
    if (!link.send(cmd)) {
      this.pending.delete(id);
      return Promise.reject(new ShoalError(`mesh connection to ${pod} closed before the command was sent`));
    }
    return this.bounded(acked, id, timeoutMs, signal);
  }

  /** Which peers this agent hears now, out of how many exist: for self-fencing and failure confirmation. */
  reachability(): Reachability {
    const now = this.clock();
    const sees: string[] = [];
    const mutual: string[] = [];
    for (const pod of this.targets.keys()) {
      const info = this.peerInfo.get(pod);
      const at = info?.lastSeenAt;
      if (at == null || now - at > this.o.staleAfterMs) continue;
      sees.push(pod);
      const hb = info?.heartbeat;
      const hbAt = info?.heartbeatAt;
      if (hb && hbAt != null && now - hbAt <= this.o.staleAfterMs && hb.sees.includes(this.o.self)) mutual.push(pod);
    }
    return { sees: sees.sort(), mutual: mutual.sort(), peers: this.targets.size };
  }

  peers(): PeerStatus[] {
    const now = this.clock();
    const pods = new Set([...this.targets.keys(), ...this.inbound.keys()]);
    return [...pods].sort().map((pod) => {
      const info = this.peerInfo.get(pod);
      const outbound = this.outbound.get(pod)?.open ?? false;
      const inbound = this.inbound.get(pod)?.open ?? false;
      return {
        pod,
        connected: outbound || inbound,
        outbound,
        inbound,
        lastSeenMs: info?.lastSeenAt != null ? Math.round(now - info.lastSeenAt) : null,
        heartbeat: info?.heartbeat ?? null,
      };
    });
  }

  /** Stops dialling and serving, closes every connection, fails pending commands. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(new ShoalError('the mesh is closing'));
    clearInterval(this.heartbeatTimer);
    for (const d of this.targets.values()) d.stop();
    this.targets.clear();
    for (const link of [...this.outbound.values(), ...this.inbound.values()]) link.terminate();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new ShoalError('the mesh closed before the ack'));
    }
    await this.server?.close();
    this.server = undefined;
  }

  // The link to use for `pod`: our outbound one, else the one it opened to us.
  private linkTo(pod: string): MeshLink | undefined {
    const out = this.outbound.get(pod);
    if (out?.open) return out;
    const inb = this.inbound.get(pod);
    return inb?.open ? inb : undefined;
  }

  private adopt(ws: WebSocket, pod: string, direction: Direction): void {
    if (this.closing.signal.aborted) {
      ws.terminate();
      return;
    }
    const table = direction === 'inbound' ? this.inbound : this.outbound;
    const link = new MeshLink({
      pod,
      direction,
      ws,
      maxMessageBytes: this.o.maxMessageBytes,
      pingIntervalMs: this.o.pingIntervalMs,
      logger: this.log,
      metrics: this.metrics,
      throttle: this.throttle,
      onMessage: (l, msg) => this.receive(l, msg),
      onClose: (l) => this.closed(l, table),
    });
    // A peer that reconnects replaces its older connection.
    table.get(pod)?.close(4000, 'replaced by a newer connection');
    table.set(pod, link);
    this.metrics.links(direction, table.size);
    this.log.info({ peer: pod, direction }, 'mesh connection open');
    link.send({ type: 'hello', v: PROTOCOL_VERSION, pod: this.o.self, cluster: this.o.cluster, term: this.guard.current.term, agentVersion: this.o.agentVersion });
  }

  private closed(link: MeshLink, table: Map<string, MeshLink>): void {
    if (table.get(link.pod) === link) table.delete(link.pod);
    this.metrics.links(link.direction, table.size);
    for (const [id, p] of this.pending) {
      if (p.link === link) {
        this.pending.delete(id);
        p.reject(new ShoalError(`mesh connection to ${link.pod} lost before the ack of ${id}; resend with the same id`));
      }
    }
    if (!this.closing.signal.aborted) this.log.info({ peer: link.pod, direction: link.direction }, 'mesh connection closed');
  }

  private receive(link: MeshLink, msg: MeshMessage): void {
    // Any valid message proves the peer's agent is alive and reaches us.
    const info = this.peerInfo.get(link.pod) ?? { lastSeenAt: null, heartbeat: null, heartbeatAt: null };
    this.peerInfo.set(link.pod, info);
    switch (msg.type) {
      case 'hello':
        if (msg.pod !== link.pod || msg.cluster !== this.o.cluster) {
          // E.g. a pod IP reused by another pod: whoever answers is not who we meant to reach.
          link.drop('identity_mismatch', `hello from ${msg.pod}/${msg.cluster} on the connection of ${link.pod}/${this.o.cluster}`);
          link.close(4001, 'identity mismatch');
          return;
        }
        info.lastSeenAt = this.clock();
        return;
      case 'heartbeat':
        if (msg.pod !== link.pod) return link.drop('identity_mismatch', `heartbeat of ${msg.pod} on the connection of ${link.pod}`);
        info.lastSeenAt = this.clock();
        info.heartbeat = msg;
        info.heartbeatAt = info.lastSeenAt;
        for (const l of this.heartbeatListeners) l(msg);
        return;
      case 'command':
        info.lastSeenAt = this.clock();
        if (msg.from !== link.pod) return link.drop('identity_mismatch', `command from ${msg.from} on the connection of ${link.pod}`);
        void this.execute(msg, link).then((ack) => {
          if (ack) link.send(ack);
        });
        return;
      case 'ack': {
        info.lastSeenAt = this.clock();
        const p = this.pending.get(msg.id);
        if (!p || p.pod !== link.pod) return link.drop('unexpected_ack', `ack ${msg.id} nobody waits for`);
        this.pending.delete(msg.id);
        p.resolve(msg);
        return;
      }
      case 'topology':
        info.lastSeenAt = this.clock();
        if (msg.from !== link.pod) return link.drop('identity_mismatch', `topology from ${msg.from} on the connection of ${link.pod}`);
        void this.receiveTopology(msg, link);
        return;
    }
  }

  /** Runs a command at most once; resolves to the ack to send (null = send nothing: a replay still running). */
  private async execute(cmd: CommandMessage, link: MeshLink | null): Promise<Ack | null> {
    const ack = (ok: boolean, extra: { error?: string; result?: JsonValue } = {}): Ack => ({ type: 'ack', v: PROTOCOL_VERSION, id: cmd.id, ok, ...extra });
    const seen = this.replays.admit(cmd.id);
    if (seen.state !== 'new') {
      this.metrics.dropped('replayed');
      this.log.info({ id: cmd.id, from: cmd.from, kind: cmd.kind, state: seen.state }, 'ignored a replayed command');
      return seen.state === 'done' ? seen.ack : null;
    }
    const verdict = await this.guard.check(cmd.term, cmd.from);
    if (verdict.verdict !== 'accept') {
      const reason = verdict.verdict === 'refuse' ? verdict.reason : 'unverified term';
      this.replays.forget(cmd.id); // a refusal may be transient (term not yet confirmable): allow a resend
      this.metrics.command('refused');
      this.metrics.dropped('stale_term');
      this.log.warn({ id: cmd.id, from: cmd.from, kind: cmd.kind, commandTerm: cmd.term, reason, via: link?.direction ?? 'local' }, 'refused a coordinator command');
      return ack(false, { error: `refused: ${reason}` });
    }
    let result: Ack;
    try {
      if (!this.commandHandler) throw new ShoalError('this agent has no command handler yet');
      const r = await this.commandHandler(cmd, { signal: this.closing.signal });
      result = r.ok ? ack(true, r.result !== undefined ? { result: r.result } : {}) : ack(false, { error: r.error });
    } catch (err) {
      result = ack(false, { error: errorMessage(err) });
    }
    this.metrics.command(result.ok ? 'ok' : 'failed');
    this.replays.complete(cmd.id, result);
    return result;
  }

  private async receiveTopology(push: TopologyPush, link: MeshLink | null): Promise<void> {
    const verdict = await this.guard.check(push.term, push.from);
    if (verdict.verdict !== 'accept') {
      link?.drop('stale_term', `topology of term ${push.term} from ${push.from}: ${verdict.verdict === 'refuse' ? verdict.reason : 'unverified'}`);
      return;
    }
    try {
      this.topologyHandler?.(push);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'topology handler threw');
    }
  }

  private bounded(p: Promise<Ack | null>, id: string, timeoutMs: number, signal?: AbortSignal): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      let done = false;
      const settle = (fn: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        fn();
      };
      const onAbort = (): void => settle(() => reject(signal?.reason));
      const timer = setTimeout(() => settle(() => reject(new ShoalError(`no ack for command ${id} within ${timeoutMs} ms`, 'resend with the same id once the peer is reachable'))), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      p.then(
        (ack) => settle(() => (ack ? resolve(ack) : reject(new ShoalError(`command ${id} is already running`)))),
        (err: unknown) => settle(() => reject(err instanceof Error ? err : new Error(String(err)))),
      );
    });
  }
}
