// The mesh's own mTLS server (SPEC §4: SHOAL_MESH_PORT, `wss://…/mesh`). The TLS handshake admits
// only peers whose certificate chains to the mesh CA (the webhook) and who hold its key; the
// `upgrade` handler then reads the pod the certificate names and accepts the link only when that
// pod is of this namespace and cluster, is the pod the peer claims (x-shoal-pod), and is in the
// watched pod list (identity.ts). Everything else gets a plain HTTP error and a closed socket, and
// is logged. Only then does ws take over (noServer mode). Plain `ws://` never gets past TLS.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { meshIdentityFromSan } from '../../common/mesh-identity.js';
import { judgePeer, type PeerRefusal } from './identity.js';
import type { MeshMetrics } from './metrics.js';
import type { LogThrottle } from './throttle.js';

export const MESH_PATH = '/mesh';
/** The pod a dialling agent says it is; its certificate must name the same pod. */
export const POD_HEADER = 'x-shoal-pod';

/** A key, its certificate and the CA bundle that every peer's certificate must chain to (PEM). */
export interface MeshCredentials {
  key: string;
  cert: string;
  ca: string;
}

export interface MeshServerOptions {
  namespace: string;
  cluster: string;
  credentials: MeshCredentials;
  /** Whether the pod watch lists this pod. */
  known: (pod: string) => boolean;
  /** ws's hard frame limit; above it the connection is closed (1009). */
  maxPayload: number;
  /** Open inbound connections allowed at once (one per peer is normal). */
  maxConnections: number;
  logger: Logger;
  metrics: MeshMetrics;
  throttle: LogThrottle;
  /** An authenticated peer connected. */
  onConnection: (ws: WebSocket, pod: string, req: IncomingMessage) => void;
  /** A plain HTTPS request from an authenticated, known peer (e.g. a forwarded /switchover). */
  onRequest?: (req: IncomingMessage, res: ServerResponse, pod: string) => void;
}

export interface MeshServer {
  port: number;
  /** New handshakes use these credentials (a renewed certificate, a new CA bundle). */
  setCredentials(c: MeshCredentials): void;
  /** Stops accepting and closes the server side of every connection. */
  close(): Promise<void>;
}

type Refusal = { status: 400 | 403 | 503; reason: PeerRefusal | 'bad_path' | 'too_many'; detail: string };

const tlsOptions = (c: MeshCredentials) => ({ key: c.key, cert: c.cert, ca: c.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' as const });

function judge(req: IncomingMessage, opts: Pick<MeshServerOptions, 'namespace' | 'cluster' | 'known' | 'maxConnections'>, open: number): Refusal | { pod: string } {
  const cert = (req.socket as TLSSocket).getPeerX509Certificate?.();
  const claimed = req.headers[POD_HEADER];
  const verdict = judgePeer({
    identity: cert ? meshIdentityFromSan(cert.subjectAltName) : null,
    namespace: opts.namespace,
    cluster: opts.cluster,
    claimed: typeof claimed === 'string' ? claimed : undefined,
    known: opts.known,
  });
  if (!verdict.ok) return { status: verdict.reason === 'unknown_pod' ? 503 : 403, reason: verdict.reason, detail: verdict.detail };
  if (open >= opts.maxConnections) return { status: 503, reason: 'too_many', detail: `already ${open} mesh connections` };
  return { pod: verdict.pod };
}

const STATUS_TEXT: Record<Refusal['status'], string> = { 400: 'Bad Request', 403: 'Forbidden', 503: 'Service Unavailable' };

function refuse(socket: Duplex, r: Refusal): void {
  const body = `${r.detail}\n`;
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // A client that never reads must not keep the socket: destroy shortly after.
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** Serves the mesh over mTLS on host:port (0 = any free port). */
export async function listenMesh(host: string, port: number, opts: MeshServerOptions): Promise<MeshServer> {
  const server: Server = createServer(tlsOptions(opts.credentials), (req, res) => {
    // Only known peers get past here, as for the websocket; what they ask is the handler's business.
    const verdict = judge(req, { ...opts, maxConnections: Infinity }, 0);
    if ('status' in verdict) {
      log(req.socket.remoteAddress, verdict.reason, verdict.detail, req.headers[POD_HEADER]);
      res.writeHead(verdict.status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${verdict.detail}\n`);
      return;
    }
    if (opts.onRequest) opts.onRequest(req, res, verdict.pod);
    else res.writeHead(404).end(`only a websocket at ${MESH_PATH} is served here\n`);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false, clientTracking: true });
  const log = (remote: string | undefined, reason: string, detail: string, claimed: unknown): void => {
    opts.metrics.rejected(reason);
    const suppressed = opts.throttle.admit(`reject/${remote}/${reason}`);
    if (suppressed !== null) opts.logger.warn({ remote, claimedPod: claimed ?? null, reason, detail, suppressed }, 'refused a mesh connection');
  };
  // No certificate, another CA's, an expired one, or not TLS at all (a plain ws:// dial).
  server.on('tlsClientError', (err, socket) => log(socket.remoteAddress, 'tls', errorMessage(err), null));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    const verdict: Refusal | { pod: string } =
      path === MESH_PATH ? judge(req, opts, wss.clients.size) : { status: 400, reason: 'bad_path', detail: `no websocket endpoint at ${path}` };
    if ('status' in verdict) {
      log(req.socket.remoteAddress, verdict.reason, verdict.detail, req.headers[POD_HEADER]);
      refuse(socket, verdict);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => opts.onConnection(ws, verdict.pod, req));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCredentials: (c) => server.setSecureContext(tlsOptions(c)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
