// The HTTPS shell around review.ts: routes, body limits, metrics, logs, certificate swaps, shutdown.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { handleReview, type Endpoint } from './review.js';
import type { InjectOptions } from './inject.js';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.js';
import { mountMeshCa, type MeshCaDeps } from './mesh-ca-route.js';

export const BODY_LIMIT_BYTES = 3 * 1024 * 1024;

export interface WebhookServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  cert: string;
  key: string;
  inject: InjectOptions;
  logger: Logger;
  metrics?: WebhookMetrics;
  /** Serve POST /mesh/certificate (the mesh CA); omitted = no such route. */
  meshCa?: MeshCaDeps;
}

export interface WebhookServer {
  /** https://<host>:<port> as bound (host 0.0.0.0 is reported as 127.0.0.1). */
  url: string;
  port: number;
  metrics: WebhookMetrics;
  /** Serve a new certificate to new connections from now on. */
  setCertificate(cert: string, key: string): void;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes every connection. */
  close(graceMs?: number): Promise<void>;
}

interface HttpError {
  type?: string;
  status?: number;
  length?: number;
}
const asHttpError = (err: unknown): HttpError => (typeof err === 'object' && err !== null ? (err as HttpError) : {});

function bodyErrorReply(err: unknown): { status: number; message: string } {
  const e = asHttpError(err);
  if (e.type === 'entity.too.large') {
    return { status: 413, message: `the body${e.length ? ` (${e.length} bytes)` : ''} is over the ${BODY_LIMIT_BYTES / 1024 / 1024} MB limit` };
  }
  if (e.type === 'entity.parse.failed') return { status: 400, message: `the body is not valid JSON (${errorMessage(err)}): send an AdmissionReview` };
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return { status: e.status, message: errorMessage(err) };
  return { status: 500, message: `internal error: ${errorMessage(err)}` };
}

export function createWebhookApp(inject: InjectOptions, logger: Logger, metrics: WebhookMetrics, meshCa?: MeshCaDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Any content type: a client that forgets the header still gets a JSON answer, not a silent {}.
  const json = express.json({ limit: BODY_LIMIT_BYTES, type: () => true, strict: false });

  for (const endpoint of ['pods', 'statefulsets'] as const satisfies readonly Endpoint[]) {
    const path = `/mutate/${endpoint}`;
    app.post(path, (req: Request, res: Response, next: NextFunction) => {
      res.locals.start = process.hrtime.bigint();
      next();
    });
    app.post(path, json, (req: Request, res: Response) => {
      const r = handleReview(endpoint, req.body, inject);
      res.status(r.status).json(r.body);
      const seconds = Number(process.hrtime.bigint() - (res.locals.start as bigint)) / 1e9;
      metrics.observe(path, r.outcome, seconds);
      const line = { endpoint: path, outcome: r.outcome, ms: Math.round(seconds * 1e6) / 1e3, ...r.log };
      if (r.outcome === 'refused' || r.outcome === 'bad-request') logger.warn(line, 'admission refused');
      else if (r.outcome === 'error') logger.error(line, 'admission failed');
      else logger.info(line, 'admission');
    });
  }
  if (meshCa) mountMeshCa(app, meshCa);
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ message: `no route ${req.method} ${req.path}: use POST /mutate/pods, POST /mutate/statefulsets, POST /mesh/certificate, GET /healthz or GET /metrics` });
  });
  // Express recognises error middleware by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = bodyErrorReply(err);
    const endpoint = req.path.startsWith('/mutate/') ? req.path : 'other';
    const outcome = status >= 500 ? 'error' : 'bad-request';
    const start = res.locals.start as bigint | undefined;
    if (start !== undefined) metrics.observe(endpoint, outcome, Number(process.hrtime.bigint() - start) / 1e9);
    logger.warn({ endpoint, outcome, status, message }, 'request refused');
    if (!res.headersSent) res.status(status).json({ message });
  });
  return app;
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const metrics = o.metrics ?? createWebhookMetrics();
  const app = createWebhookApp(o.inject, o.logger, metrics, o.meshCa);
  const server: Server = createServer({ cert: o.cert, key: o.key, minVersion: 'TLSv1.2' }, app);
  // The API server gives up after timeoutSeconds (≤ 30): a slower client is not one we need to wait for.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on('tlsClientError', (err) => o.logger.debug({ err: errorMessage(err) }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `https://${shownHost}:${port}`,
    port,
    metrics,
    setCertificate(cert, key) {
      server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    },
    close(graceMs = 5000) {
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
