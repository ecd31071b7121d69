// An HTTPS reverse proxy between pods and the API server that can misbehave on purpose. Idle, it
// forwards every request as it came (watches and other streamed responses chunk by chunk); while a
// fault window is open it answers a seeded fraction of requests with a 500 or a 409 Status, or
// forwards them late (api-fault-plan.ts decides which). It presents the API server's own serving
// certificate, so in-cluster clients that trust the cluster CA trust it. Upgrade requests (exec,
// port-forward) are not proxied: the agents make none.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request } from 'node:https';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { pipeline } from 'node:stream';
import { conflictStatus, decideFault, internalErrorStatus, isWatch, type FaultDecision, type FaultWindow, type InjectedKind, type StatusBody } from './api-fault-plan.js';

export interface ApiFaultProxyOptions {
  /** The real API server, `https://host:port`. */
  upstream: string;
  /** PEM: the CA the upstream's certificate is checked against. */
  ca: string | Buffer;
  /** PEM: what the proxy presents to its clients. */
  cert: string | Buffer;
  key: string | Buffer;
  /** Default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  /** Called for every request decided inside a window (tests record the sequence). */
  onDecision?(d: { method: string; url: string; decision: FaultDecision }): void;
}

export type ApiFaultCounts = Record<InjectedKind | 'forwarded', number>;

export interface ApiFaultProxy {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /**
   * Starts injecting faults into new requests (replaces an open window). Watches open at that moment
   * end as if they had timed out, so their clients list and watch again through the faults.
   */
  openWindow(w: FaultWindow): void;
  /** Back to forwarding everything; requests already waiting as slow still go through late. */
  closeWindow(): void;
  /** Totals since start: forwarded requests and each kind of injected fault. */
  counts(): ApiFaultCounts;
  /** Connections open now: from clients, and to the API server. */
  openConnections(): { clients: number; upstream: number };
  /** Stops listening, closes every client and upstream connection, cancels slow waits. Idempotent. */
  close(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's own, not the message's.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function endToEnd(h: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !HOP_BY_HOP.has(k)));
}

function sendStatus(req: IncomingMessage, res: ServerResponse, body: StatusBody): void {
  req.resume(); // the request body is not wanted
  const text = JSON.stringify(body);
  res.writeHead(body.code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.end(text);
}

export async function startApiFaultProxy(o: ApiFaultProxyOptions): Promise<ApiFaultProxy> {
  const up = new URL(o.upstream);
  const agent = new Agent({ keepAlive: true, ca: o.ca });
  const sockets = new Set<Socket>();
  const waits = new Map<NodeJS.Timeout, () => void>();
  const counts: ApiFaultCounts = { forwarded: 0, error: 0, conflict: 0, slow: 0 };
  /** Watches being forwarded, and how to end each one. */
  const watches = new Map<ServerResponse, () => void>();
  let window: FaultWindow | undefined;
  let closed = false;
  const upstreamSockets = (): Socket[] => [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].flatMap((xs) => xs ?? []);

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    let cut = false;
    const upReq = request({ protocol: up.protocol, hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.headers));
      res.flushHeaders(); // a watch's headers come before its first event
      upRes.pipe(res);
      // An upstream cut mid-stream (API server stopped) cuts the client's response too.
      upRes.once('close', () => {
        if (!upRes.complete && !cut) res.destroy();
      });
      if (isWatch(req.url)) {
        watches.set(res, () => {
          cut = true;
          upRes.unpipe(res);
          upReq.destroy();
          res.end();
        });
        res.once('close', () => watches.delete(res));
      }
    });
    // The upstream unreachable (API server stopped): the client's connection drops, as it would
    // without the proxy, instead of getting an answer the API server never gave.
    upReq.on('error', () => {
      if (!cut) req.socket.destroy();
    });
    // The client gone (a watch stopped, a request timed out): the upstream request goes too.
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    pipeline(req, upReq, () => undefined);
  };

  const delay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        waits.delete(t);
        resolve();
      }, ms);
      waits.set(t, resolve);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const decision: FaultDecision = window ? decideFault(window, req.method) : { kind: 'forward' };
    if (window) o.onDecision?.({ method: req.method ?? '', url: req.url ?? '', decision });
    switch (decision.kind) {
      case 'forward':
        counts.forwarded++;
        return forward(req, res);
      case 'error':
        counts.error++;
        return sendStatus(req, res, internalErrorStatus());
      case 'conflict':
        counts.conflict++;
        return sendStatus(req, res, conflictStatus(req.method, req.url));
      case 'slow':
        counts.slow++;
        await delay(decision.delayMs);
        if (closed || req.socket.destroyed) return; // the client gave up, or the proxy stopped
        return forward(req, res);
    }
  };

  const server = createServer({ cert: o.cert, key: o.key }, (req, res) => void handle(req, res));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', (_err, s) => s.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('the API fault proxy has no TCP address');
  const host = addr.address;
  let closing: Promise<void> | undefined;

  return {
    host,
    port: addr.port,
    url: `https://${host}:${addr.port}`,
    openWindow: (w) => {
      window = w;
      for (const end of watches.values()) end(); // as the API server ends a watch at its timeout
      watches.clear();
    },
    closeWindow: () => {
      window = undefined;
    },
    counts: () => ({ ...counts }),
    openConnections: () => ({ clients: sockets.size, upstream: upstreamSockets().length }),
    close: () =>
      (closing ??= (async () => {
        closed = true;
        window = undefined;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const [t, wake] of waits) {
          clearTimeout(t);
          wake();
        }
        waits.clear();
        const open = [...sockets, ...upstreamSockets()];
        const gone = open.map((s) => (s.closed ? Promise.resolve() : once(s, 'close').then(() => undefined)));
        for (const s of open) s.destroy();
        agent.destroy();
        await Promise.all([stopped, ...gone]);
      })()),
  };
}
