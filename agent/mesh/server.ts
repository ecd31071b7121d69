// The `/mesh` endpoint on the agent's HTTP server. Authentication happens in the `upgrade` handler,
// before any websocket handshake: no token, a wrong token or another cluster's claim gets a plain
// HTTP error and a closed socket, and is logged. Only then does ws take over (noServer mode).
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../common/log.js';
import { tokenMatches } from '../../common/token.js';
import type { MeshMetrics } from './metrics.js';
import type { LogThrottle } from './throttle.js';

export const MESH_PATH = '/mesh';
/** Request headers a dialling agent sends besides `Authorization: Bearer <token>`. */
export const CLUSTER_HEADER = 'x-shoal-cluster';
export const POD_HEADER = 'x-shoal-pod';

const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface MeshServerOptions {
  cluster: string;
  token: string;
  /** ws's hard frame limit; above it the connection is closed (1009). */
  maxPayload: number;
  /** Open inbound connections allowed at once (one per peer is normal). */
  maxConnections: number;
  logger: Logger;
  metrics: MeshMetrics;
  throttle: LogThrottle;
  /** An authenticated peer connected. */
  onConnection: (ws: WebSocket, pod: string, req: IncomingMessage) => void;
}

export interface MeshServer {
  /** Stops accepting and closes the server side of every connection. */
  close(): Promise<void>;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

type Refusal = { status: 400 | 401 | 403 | 503; reason: string; detail: string };

function judge(req: IncomingMessage, opts: MeshServerOptions, open: number): Refusal | { pod: string } {
  const token = bearerToken(req.headers.authorization);
  if (token === undefined) return { status: 401, reason: 'missing_token', detail: 'no Authorization: Bearer token' };
  if (!tokenMatches(token, opts.token)) return { status: 401, reason: 'wrong_token', detail: 'the token does not match this cluster\'s mesh secret' };
  const cluster = req.headers[CLUSTER_HEADER];
  if (cluster !== opts.cluster) return { status: 403, reason: 'wrong_cluster', detail: `claims cluster ${JSON.stringify(cluster)}, this is ${opts.cluster}` };
  const pod = req.headers[POD_HEADER];
  if (typeof pod !== 'string' || !POD_NAME.test(pod)) return { status: 400, reason: 'bad_pod', detail: `no valid ${POD_HEADER} header` };
  if (open >= opts.maxConnections) return { status: 503, reason: 'too_many', detail: `already ${open} mesh connections` };
  return { pod };
}

const STATUS_TEXT: Record<Refusal['status'], string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' };

function refuse(socket: Duplex, r: Refusal): void {
  const body = `${r.detail}\n`;
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${r.status === 401 ? 'WWW-Authenticate: Bearer\r\n' : ''}\r\n${body}`,
  );
  // A client that never reads must not keep the socket: destroy shortly after.
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** Serves the mesh on `server` at /mesh. Other upgrade paths are left to other listeners (404 if none). */
export function attachMesh(server: Server, opts: MeshServerOptions): MeshServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false, clientTracking: true });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== MESH_PATH) {
      if (server.listenerCount('upgrade') === 1) refuse(socket, { status: 400, reason: 'bad_path', detail: `no websocket endpoint at ${path}` });
      return;
    }
    socket.on('error', () => socket.destroy());
    const verdict = judge(req, opts, wss.clients.size);
    if ('status' in verdict) {
      opts.metrics.rejected(verdict.reason);
      const suppressed = opts.throttle.admit(`reject/${req.socket.remoteAddress}/${verdict.reason}`);
      if (suppressed !== null) {
        opts.logger.warn(
          { remote: req.socket.remoteAddress, claimedPod: req.headers[POD_HEADER] ?? null, reason: verdict.reason, detail: verdict.detail, suppressed },
          'refused a mesh connection',
        );
      }
      refuse(socket, verdict);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => opts.onConnection(ws, verdict.pod, req));
  };
  server.on('upgrade', onUpgrade);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.off('upgrade', onUpgrade);
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
