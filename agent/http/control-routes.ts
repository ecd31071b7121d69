// POST /switchover and GET /prestop (SPEC §4–§5) on the agent's express app. /switchover takes a
// Kubernetes bearer token: TokenReview says who the caller is, SubjectAccessReview whether they may
// `update` the replica set's StatefulSet (kube-access.ts); 401 / 403 / 503 otherwise, never a pass
// on an error. /prestop is called by the kubelet's preStop hook and takes no credentials: it acts
// only while this pod is terminating (member/prestop-gate.ts), which no caller can fake.
import express, { type Express, type Request, type Response } from 'express';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { SwitchoverRequest } from '../decide/switchover.js';
import type { SwitchoverCaller } from '../member/handover.js';
import { switchoverRight, type Refusal } from './access.js';
import type { CallerAccess } from './kube-access.js';

export interface ControlRouteHandlers {
  /** Who the caller is and what they may do (TokenReview, SubjectAccessReview). */
  access: CallerAccess;
  /** The namespace of the replica sets' StatefulSets (the agent's own). */
  namespace: string;
  switchover: (req: SwitchoverRequest, caller: SwitchoverCaller, signal: AbortSignal) => Promise<{ status: number; body: object }>;
  prestop: (signal: AbortSignal) => Promise<{ status: number; body: object }>;
  /** Bound of one /switchover request. */
  switchoverTimeoutMs: number;
  /** Bound of /prestop (SHOAL_PRESTOP_TIMEOUT_MS); the handler stops itself there. */
  prestopTimeoutMs: number;
  forwardedHeader: string;
  logger: Logger;
}

const POD = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Parses the body of POST /switchover; a string is the problem to report. `forwardedBy` (an agent
 * forwarding to the coordinator) may name who asked first in `requestedBy`.
 */
export function parseSwitchoverBody(text: string, forwardedBy: string | null = null): SwitchoverRequest | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'the body must be JSON: {"replicaset": "<statefulset>", "to": "<pod, optional>", "from": "<pod: only if still the master, optional>"}';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'the body must be a JSON object';
  const o = raw as Record<string, unknown>;
  const { replicaset, to, from } = o;
  if (typeof replicaset !== 'string' || !POD.test(replicaset)) return '"replicaset" must be the name of a StatefulSet of this cluster';
  const pod = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && POD.test(v));
  if (!pod(to)) return '"to" must be a pod name when given';
  if (!pod(from)) return '"from" must be a pod name when given';
  const first = typeof o['requestedBy'] === 'string' ? o['requestedBy'].slice(0, 200) : 'POST /switchover';
  const requestedBy = forwardedBy === null ? 'POST /switchover' : `${first} via ${forwardedBy}`;
  return { replicaset, ...(typeof to === 'string' ? { to } : {}), ...(typeof from === 'string' ? { from } : {}), requestedBy };
}

// An abort signal for one HTTP exchange: the client going away or the bound passing.
function requestSignal(req: Request, res: Response, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  const gone = (): void => {
    if (!res.writableEnded) ac.abort(new Error('the client went away'));
  };
  res.once('close', gone);
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      res.off('close', gone);
    },
  };
}

export function mountControlRoutes(app: Express, h: ControlRouteHandlers): void {
  const log = h.logger;
  const refuse = (res: Response, r: Refusal): void => {
    if (r.status === 401) res.set('WWW-Authenticate', 'Bearer realm="shoal"');
    res.status(r.status).json({ ok: false, reason: r.reason });
  };
  app.post('/switchover', express.text({ type: () => true, limit: '16kb' }), async (req: Request, res: Response) => {
    const { signal, done } = requestSignal(req, res, h.switchoverTimeoutMs);
    try {
      const authorization = req.get('authorization');
      const who = await h.access.authenticate(authorization, signal);
      if (!who.allowed) {
        log.warn({ remote: req.socket.remoteAddress, hasAuth: authorization !== undefined, status: who.status }, 'refused an unauthenticated /switchover');
        return refuse(res, who);
      }
      const forwardedBy = req.get(h.forwardedHeader) ?? null;
      const parsed = parseSwitchoverBody(typeof req.body === 'string' ? req.body : '', forwardedBy);
      if (typeof parsed === 'string') {
        res.status(400).json({ ok: false, reason: parsed });
        return;
      }
      const right = await h.access.authorize(who.caller, switchoverRight(h.namespace, parsed.replicaset), signal);
      if (!right.allowed) return refuse(res, right);
      log.info({ replicaset: parsed.replicaset, to: parsed.to, user: who.caller.username, forwardedBy }, 'switchover requested');
      // The first agent names the user; the coordinator keeps what the forwarding agent said (and re-checked the same user).
      const request = forwardedBy === null ? { ...parsed, requestedBy: `POST /switchover by ${who.caller.username}` } : parsed;
      const r = await h.switchover(request, { authorization: authorization ?? '', forwardedBy }, signal);
      res.status(r.status).json(r.body);
    } catch (err) {
      if (!res.headersSent) res.status(signal.aborted ? 504 : 500).json({ ok: false, reason: errorMessage(err) });
    } finally {
      done();
    }
  });

  app.get('/prestop', async (req: Request, res: Response) => {
    const { signal, done } = requestSignal(req, res, h.prestopTimeoutMs + 5_000);
    try {
      const r = await h.prestop(signal);
      res.status(r.status).json(r.body);
    } catch (err) {
      res.status(500).json({ handedOver: false, reason: errorMessage(err) });
    } finally {
      done();
    }
  });
}
