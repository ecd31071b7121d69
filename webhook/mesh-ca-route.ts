// POST /mesh/certificate (SPEC §2): the HTTPS shell around mesh-ca.ts. The caller's bearer token
// goes to TokenReview with the mesh-CA audience, its pod is read, and a certificate naming that pod
// is signed. Every refusal is a JSON {message} with what to fix, and is logged; an API server that
// cannot answer is a 503 (never a certificate).
import type { V1Pod, V1TokenReviewStatus } from '@kubernetes/client-node';
import express, { type Request, type Response } from 'express';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { MESH_CERTIFICATE_PATH } from '../common/names.js';
import { bearerToken } from '../common/token.js';
import { identityOf, isRefusal, issueMeshCertificate, parsePublicKey, podFromReview } from './mesh-ca.js';

export interface MeshCaDeps {
  /** TokenReview of `token` for the mesh-CA audience. */
  review(token: string, signal: AbortSignal): Promise<V1TokenReviewStatus>;
  /** The pod, or null when it does not exist. */
  getPod(namespace: string, name: string, signal: AbortSignal): Promise<V1Pod | null>;
  /** The CA to sign with, or null when this webhook does not hold its key. */
  ca(): { cert: string; key: string } | null;
  logger: Logger;
  /** Bound of the API calls behind one request (default 5 s). */
  timeoutMs?: number;
}

export function mountMeshCa(app: express.Express, d: MeshCaDeps): void {
  const json = express.json({ limit: 16 * 1024, type: () => true });
  app.post(MESH_CERTIFICATE_PATH, json, async (req: Request, res: Response) => {
    const refuse = (status: number, message: string, extra: Record<string, unknown> = {}): void => {
      d.logger.warn({ endpoint: MESH_CERTIFICATE_PATH, status, message, ...extra }, 'refused a mesh certificate');
      res.status(status).json({ message });
    };
    const ca = d.ca();
    if (!ca) return refuse(503, 'this webhook does not hold its CA key: run it with the certificate Secret (a cluster) or let it generate its certificates');
    const token = bearerToken(req.get('authorization'));
    if (!token) return refuse(401, 'send the projected mesh-CA token as Authorization: Bearer <token>');
    const key = parsePublicKey(req.body);
    if (isRefusal(key)) return refuse(key.status, key.reason);
    const signal = AbortSignal.timeout(d.timeoutMs ?? 5_000);
    let caller;
    let identity;
    try {
      caller = podFromReview(await d.review(token, signal));
      if (isRefusal(caller)) return refuse(caller.status, caller.reason);
      identity = identityOf(caller, await d.getPod(caller.namespace, caller.pod, signal));
    } catch (err) {
      return refuse(503, `cannot ask the API server (${errorMessage(err)}); retry`);
    }
    if (isRefusal(identity)) return refuse(identity.status, identity.reason, { pod: `${caller.namespace}/${caller.pod}` });
    const certificate = await issueMeshCertificate(ca, key, identity);
    d.logger.info({ endpoint: MESH_CERTIFICATE_PATH, ...identity }, 'issued a mesh certificate');
    res.status(200).json({ certificate, ca: ca.cert });
  });
}
