// POST /switchover and GET /prestop (SPEC §4–§5) on the agent's express app. /switchover requires
// `Authorization: Bearer <mesh token>` (compared in constant time); /prestop is called by the
// kubelet's preStop hook from inside the pod and takes no credentials (it can only make this pod's
// own master hand over, which its deletion is about to force anyway).
import express, { type Express, type Request, type Response } from 'express';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { tokenMatches } from '../../shared/token.js';
import type { SwitchoverRequest } from '../decide/switchover.js';

export interface ControlRouteHandlers {
  /** The mesh token; null until the agent has read the mesh Secret. */
  token: () => string | null;
  switchover: (req: SwitchoverRequest, forwardedBy: string | null, signal: AbortSignal) => Promise<{ status: number; body: object }>;
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
  app.post('/switchover', express.text({ type: () => true, limit: '16kb' }), async (req: Request, res: Response) => {
    const token = h.token();
    if (token === null) {
      res.status(503).json({ ok: false, reason: 'this agent has not read the mesh Secret yet; retry shortly' });
      return;
    }
    const auth = req.get('authorization') ?? '';
    const presented = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    if (!presented || !tokenMatches(presented, token)) {
      log.warn({ remote: req.socket.remoteAddress, hasAuth: auth !== '' }, 'refused an unauthenticated /switchover');
      res.status(401).set('WWW-Authenticate', 'Bearer realm="shoal"').json({ ok: false, reason: 'missing or wrong bearer token (the "token" key of Secret shoal-<cluster>-mesh)' });
      return;
    }
    const forwardedBy = req.get(h.forwardedHeader) ?? null;
    const parsed = parseSwitchoverBody(typeof req.body === 'string' ? req.body : '', forwardedBy);
    if (typeof parsed === 'string') {
      res.status(400).json({ ok: false, reason: parsed });
      return;
    }
    const { signal, done } = requestSignal(req, res, h.switchoverTimeoutMs);
    try {
      log.info({ replicaset: parsed.replicaset, to: parsed.to, forwardedBy }, 'switchover requested');
      const r = await h.switchover(parsed, forwardedBy, signal);
      res.status(r.status).json(r.body);
    } catch (err) {
      res.status(500).json({ ok: false, reason: errorMessage(err) });
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
