// Switchover requests and /prestop. A request is served by the coordinator's loop; an agent that is
// not the coordinator forwards POST /switchover to the Lease holder's /switchover with the caller's
// own Authorization header, which the coordinator checks again (TokenReview and SubjectAccessReview,
// cached): no credential of the agents' own opens that path. The forward goes over the mesh's mTLS
// port (Mesh.request), so the caller's token never crosses the network in clear text.
// Why not a mesh command: the mesh accepts commands only from the holder of the current term, by
// design, so an ordinary agent cannot send one.
// /prestop acts only while this pod is terminating (prestop-gate.ts). A master that is not the
// coordinator asks nobody: the coordinator sees the deletionTimestamp in its own pod watch and hands
// over by itself (decide/switchover.ts); the agent waits for that, within its bound.
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { SwitchoverRequest } from '../decide/switchover.js';
import { sleep } from '../../common/time.js';
import { abortAfter } from '../../common/abort.js';
import type { SwitchoverOutcome } from '../coordinator/loop.js';
import type { PrestopVerdict } from './prestop-gate.js';

export interface SwitchoverReply {
  status: number;
  body: { ok: boolean; from?: string; to?: string; reason: string; coordinator?: string | null };
}

export interface PrestopReply {
  status: number;
  body: Record<string, unknown>;
}

export const FORWARDED_HEADER = 'x-shoal-forwarded-by';

/** Who asked for a switchover: their Authorization header (forwarded as is) and the agent that forwarded it. */
export interface SwitchoverCaller {
  authorization: string;
  forwardedBy: string | null;
}

export interface HandoverOptions {
  self: string;
  replicaset: string;
  /** The coordinator here, when this agent runs one (null = it does not lead). */
  localCoordinator: () => { requestSwitchover(r: SwitchoverRequest, signal: AbortSignal): Promise<SwitchoverOutcome> } | null;
  /** The Lease holder as last observed ('' = none). */
  leader: () => string;
  /**
   * Sends a forwarded request to a pod's agent, never in clear text: the mesh's mTLS port, the peer's
   * certificate checked to name that pod (Mesh.request). Rejects when the pod cannot be reached.
   */
  forward: (pod: string, req: ForwardRequest) => Promise<{ status: number; body: unknown }>;
  /** Is this pod terminating? (termination.ts: SIGTERM, the pod watch, a direct read.) */
  termination: (sigterm: () => boolean, signal: AbortSignal) => Promise<PrestopVerdict>;
  /** The local instance: is it writable right now (a fresh read)? */
  writable: (signal: AbortSignal) => Promise<boolean>;
  /** The replica set's master as last published by the coordinator (undefined = no view yet). */
  publishedMaster: () => string | null | undefined;
  logger: Logger;
}

export interface ForwardRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

const reply = (status: number, body: SwitchoverReply['body']): SwitchoverReply => ({ status, body });

function fromOutcome(o: SwitchoverOutcome, coordinator: string): SwitchoverReply {
  if (o.ok) return reply(200, { ok: true, from: o.from, to: o.to, reason: o.reason, coordinator });
  // retry: the obstacle is temporary (503 says "ask again"); otherwise the request cannot succeed (409).
  return reply(o.retry ? 503 : 409, { ok: false, reason: o.reason, coordinator });
}

export class Handover {
  /** The hand-over of /prestop (or of SIGTERM) under way, if any. */
  private prestopping: Promise<PrestopReply> | null = null;
  /** SIGTERM arrived (beforeStop): the pod is stopping, /prestop may act. */
  private stopping = false;

  constructor(private readonly o: HandoverOptions) {}

  /**
   * Before the agent stops (SIGTERM). In container mode the kubelet signals the agent and runs the
   * Tarantool container's preStop hook at the same moment, so SIGTERM may come before /prestop does:
   * a master then hands over here itself (else the mesh loses its agent, nobody can fence it, and
   * the pod's deletion ends in a failover instead of a hand-over), or joins the /prestop running.
   */
  async beforeStop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.prestopping) this.o.logger.info('waiting for the /prestop hand-over before stopping');
    await this.prestop(timeoutMs, new AbortController().signal).catch(() => undefined);
  }

  /**
   * Serves POST /switchover (the caller already authenticated and authorized here). Not the
   * coordinator: forwards it with the caller's Authorization header, for the coordinator to check again.
   */
  async switchover(req: SwitchoverRequest, caller: SwitchoverCaller, signal: AbortSignal): Promise<SwitchoverReply> {
    const local = this.o.localCoordinator();
    if (local) return fromOutcome(await local.requestSwitchover(req, signal), this.o.self);
    const leader = this.o.leader();
    if (caller.forwardedBy !== null || leader === '' || leader === this.o.self) {
      const reason = leader === '' ? 'no coordinator is elected right now' : `this agent does not coordinate (the Lease names ${leader})`;
      return reply(503, { ok: false, reason: `${reason}; retry shortly`, coordinator: leader || null });
    }
    try {
      const res = await this.o.forward(leader, {
        method: 'POST',
        path: '/switchover',
        headers: { authorization: caller.authorization, 'content-type': 'application/json', [FORWARDED_HEADER]: this.o.self },
        body: JSON.stringify(req),
        signal,
      });
      const body = res.body as SwitchoverReply['body'];
      return reply(res.status, { ...body, coordinator: body.coordinator ?? leader });
    } catch (err) {
      if (signal.aborted) return reply(504, { ok: false, reason: 'the switchover did not finish in time', coordinator: leader });
      return reply(503, { ok: false, reason: `forwarding to the coordinator ${leader} failed: ${errorMessage(err)}`, coordinator: leader });
    }
  }

  /**
   * GET /prestop from the kubelet's preStop hook (or anyone who reaches the port): acts only while
   * this pod is terminating; on a running pod it answers 409 (503 when that cannot be told) and
   * moves nothing. A hand-over already under way is joined.
   */
  async prestopHook(timeoutMs: number, signal: AbortSignal): Promise<PrestopReply> {
    if (this.prestopping) return this.prestopping;
    const verdict = await this.o.termination(() => this.stopping, signal);
    if (verdict.kind !== 'act') {
      const status = verdict.kind === 'refuse' ? verdict.status : 503;
      this.o.logger.warn({ status, reason: verdict.reason }, '/prestop refused: nothing moved');
      return { status, body: { handedOver: false, refused: true, reason: verdict.reason } };
    }
    this.o.logger.info({ reason: verdict.reason }, '/prestop: this pod is terminating');
    return this.prestop(timeoutMs, signal);
  }

  /**
   * The hand-over of a stopping pod (SIGTERM, or a /prestop that passed the gate): a master waits
   * until it is neither writable nor the published master (so it keeps serving the catch-up), or
   * the bound passes. Replicas return at once.
   */
  prestop(timeoutMs: number, signal: AbortSignal): Promise<PrestopReply> {
    // One hand-over at a time: a second caller (the preStop hook and SIGTERM, or a retried hook)
    // joins the running one. Two loops would each ask for a switchover "from the current master",
    // and the second request would move the role on again from the pod that just took it.
    if (this.prestopping) return this.prestopping;
    const p = this.runPrestop(timeoutMs, signal).finally(() => {
      this.prestopping = null;
    });
    this.prestopping = p;
    return p;
  }

  private async runPrestop(timeoutMs: number, signal: AbortSignal): Promise<PrestopReply> {
    const started = Date.now();
    // A timer we hold (abortAfter), not AbortSignal.any over an inline AbortSignal.timeout: Node 20
    // may collect that unreferenced timeout signal, and then this loop never ends (seen: 789 retries
    // over 240 s in a test tear-down).
    const bound = abortAfter(Math.max(1, timeoutMs), () => new Error(`/prestop bound of ${timeoutMs} ms`), signal);
    try {
      return await this.handOver(bound.signal, started, timeoutMs);
    } finally {
      bound.unlink();
    }
  }

  private async handOver(deadline: AbortSignal, started: number, timeoutMs: number): Promise<PrestopReply> {
    const log = this.o.logger;
    const stillMaster = async (s: AbortSignal): Promise<boolean> =>
      (await this.o.writable(s).catch(() => false)) || this.o.publishedMaster() === this.o.self;
    if (!(await this.o.writable(deadline).catch(() => false)) && this.o.publishedMaster() !== this.o.self) {
      return { status: 200, body: { wasMaster: false, reason: 'not the master: nothing to hand over' } };
    }
    log.info({ timeoutMs }, '/prestop: handing the master role over before stopping');
    let last = '';
    while (!deadline.aborted) {
      if (!(await stillMaster(deadline))) {
        const ms = Date.now() - started;
        log.info({ ms }, '/prestop: handed over');
        return { status: 200, body: { wasMaster: true, handedOver: true, ms } };
      }
      const local = this.o.localCoordinator();
      if (local === null) {
        // The coordinator hands a terminating master over by itself (it sees the deletionTimestamp);
        // nobody but an authorized operator may ask it to, so this agent waits and looks again.
        const waiting = `waiting for the coordinator ${this.o.leader() || '(none elected)'} to hand over`;
        if (waiting !== last) log.info({ coordinator: this.o.leader() }, `/prestop: ${waiting}`);
        last = waiting;
        await sleep(250, deadline).catch(() => undefined);
        continue;
      }
      // `from`: should another path have handed over meanwhile, the coordinator must not move the role on.
      const request = { replicaset: this.o.replicaset, from: this.o.self, requestedBy: `/prestop of ${this.o.self}` };
      const r = fromOutcome(await local.requestSwitchover(request, deadline), this.o.self);
      if (r.body.reason !== last) log.info({ status: r.status, reason: r.body.reason }, '/prestop: switchover request answered');
      last = r.body.reason;
      if (r.body.ok) {
        // Done: the coordinator answers after the new master is writable. Asking again before the
        // new view reaches this agent would hand the role on from the pod that just took it.
        const ms = Date.now() - started;
        log.info({ ms, to: r.body.to }, '/prestop: handed over');
        return { status: 200, body: { wasMaster: true, handedOver: true, ms } };
      }
      // Refused (e.g. already under way: reconcile hands over a terminating master by itself): wait and look again.
      await sleep(250, deadline).catch(() => undefined);
    }
    const reason = `still the master after ${timeoutMs} ms: ${last || 'no answer from the coordinator'}`;
    log.warn({ reason }, '/prestop: giving up');
    return { status: 504, body: { wasMaster: true, handedOver: false, reason } };
  }
}
