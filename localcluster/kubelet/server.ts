import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import { serveExec } from './exec.js';
import { servePortForward } from './portforward.js';
import type { ContainerTarget } from './process.js';
import {
  authorizeClient,
  EXEC_PROTOCOLS,
  negotiateProtocol,
  parseExecQuery,
  parseKubeletPath,
  PORT_FORWARD_PROTOCOLS,
  upgradeKind,
  websocketRefusal,
  type PeerCertificate,
} from './streaming.js';

// The kubelet's HTTPS endpoint, as far as kubectl reaches it through the API server (which proxies
// to the node's InternalIP and kubeletEndpoint port): GET /containerLogs/<ns>/<pod>/<container>
// (`kubectl logs`: the container's file, every run appended), and the SPDY streaming endpoints
// /exec/<ns>/<pod>/<container> and /portForward/<ns>/<pod> (exec.ts, portforward.ts). Only the
// API server's kubelet client certificate gets in (signed by the cluster CA, its CN listed). The
// serving certificate is self-signed: the local API server runs without
// --kubelet-certificate-authority and does not check it.

export interface KubeletServer {
  port: number;
  close(): Promise<void>;
}

/** What the endpoints need to know of the pods on this node. */
export interface ServedPods {
  logPath(namespace: string, pod: string, container: string): string | undefined;
  /** The pod's IP; undefined when the pod is not (or not yet) running on this node. */
  podIP(namespace: string, pod: string): string | undefined;
  execTarget(namespace: string, pod: string, container: string): ContainerTarget | undefined;
}

export interface ServerAuth {
  /** PEM of the CA that signs the clients' certificates (the cluster CA). */
  clientCa: string | Buffer;
  /** Certificate CNs allowed in: the API server's --kubelet-client-certificate. */
  users: string[];
}

/** The kubelet's streamCreationTimeout default. */
const STREAM_TIMEOUT_MS = 30_000;

export interface LogQuery {
  follow: boolean;
  tailLines?: number;
  limitBytes?: number;
}

export function parseLogQuery(params: URLSearchParams): LogQuery {
  const num = (k: string): number | undefined => {
    const v = params.get(k);
    return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const tailLines = num('tailLines');
  const limitBytes = num('limitBytes');
  return { follow: params.get('follow') === 'true', ...(tailLines !== undefined ? { tailLines } : {}), ...(limitBytes !== undefined ? { limitBytes } : {}) };
}

/** Byte offset where the last `lines` lines of `text` start. */
export function tailOffset(text: Buffer, lines: number): number {
  if (lines <= 0) return text.length;
  let end = text.length;
  if (end > 0 && text[end - 1] === 0x0a) end--; // a final newline does not start a line
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (text[i] === 0x0a && ++seen === lines) return i + 1;
  }
  return 0;
}

async function startOffset(file: string, q: LogQuery): Promise<number> {
  if (q.tailLines === undefined) return 0;
  const size = (await stat(file)).size;
  const window = Math.min(size, 4 * 1024 * 1024); // enough for any sane tail
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(window);
    await fh.read(buf, 0, window, size - window);
    return size - window + tailOffset(buf, q.tailLines);
  } finally {
    await fh.close();
  }
}

function peerOf(socket: TLSSocket): PeerCertificate {
  const cn = socket.getPeerCertificate()?.subject?.CN;
  const err = socket.authorizationError;
  return {
    authorized: socket.authorized,
    ...(err ? { authorizationError: String(err) } : {}),
    ...(cn ? { commonName: Array.isArray(cn) ? String(cn[0]) : cn } : {}),
  };
}

/** An HTTP error answer on a socket that was not handed to an HTTP response (an upgrade request's). */
function refuse(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = `${message}\n`;
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

function serveLogs(res: ServerResponse, file: string, params: URLSearchParams, closing: AbortSignal, logger: Logger): void {
  const q = parseLogQuery(params);
  void (async () => {
    let pos = await startOffset(file, q).catch(() => 0);
    let budget = q.limitBytes ?? Infinity;
    res.setHeader('Content-Type', 'text/plain');
    // Copies what the file holds from `pos`; with follow, again whenever it grows.
    for (;;) {
      const size = (await stat(file).catch(() => ({ size: pos }))).size;
      if (size > pos && budget > 0) {
        const end = Math.min(size, pos + budget) - 1;
        await new Promise<void>((resolve) => {
          const stream = createReadStream(file, { start: pos, end });
          stream.on('end', resolve).on('error', () => resolve());
          stream.pipe(res, { end: false });
        });
        budget -= end + 1 - pos;
        pos = end + 1;
      }
      if (!q.follow || budget <= 0 || res.destroyed || closing.aborted) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    res.end();
  })().catch((err: unknown) => {
    logger.debug({ err: errorMessage(err) }, 'log request failed');
    res.destroy();
  });
}

export async function startKubeletServer(opts: { pods: ServedPods; auth: ServerAuth; logger: Logger }): Promise<KubeletServer> {
  const { pods, logger } = opts;
  const pems = await generate([{ name: 'commonName', value: 'shoal-process-kubelet' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600 * 1000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const sockets = new Set<Duplex>();
  const closing = new AbortController();

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const reply = (status: number, message: string): void => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(`${message}\n`);
    };
    const auth = authorizeClient(peerOf(req.socket as TLSSocket), opts.auth.users);
    if (!auth.ok) return reply(auth.status, auth.message);
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const route = parseKubeletPath(url.pathname);
    switch (route.kind) {
      case 'healthz':
        return reply(200, 'ok');
      case 'containerLogs': {
        if (req.method !== 'GET') return reply(405, 'only GET');
        const file = pods.logPath(route.namespace, route.pod, route.container);
        if (!file) return reply(404, `container ${route.container} of pod ${route.namespace}/${route.pod} is not on this node`);
        return serveLogs(res, file, url.searchParams, closing.signal, logger);
      }
      case 'exec':
      case 'portForward':
        return reply(400, 'unable to upgrade: missing upgrade headers in request (Connection: Upgrade, Upgrade: SPDY/3.1)');
      case 'attach':
        return reply(501, 'the process kubelet does not attach: container output goes to its log file (kubectl logs)');
      case 'unknown':
        return reply(404, 'the process kubelet serves /containerLogs, /exec, /portForward and /healthz');
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', (err) => logger.debug({ err: errorMessage(err) }, 'kubelet upgrade socket error'));
    const auth = authorizeClient(peerOf(socket as TLSSocket), opts.auth.users);
    if (!auth.ok) return refuse(socket, auth.status, auth.message);
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const route = parseKubeletPath(url.pathname);
    if (route.kind !== 'exec' && route.kind !== 'portForward') {
      return refuse(socket, route.kind === 'unknown' ? 404 : 400, `${url.pathname} does not upgrade`);
    }
    const kind = upgradeKind(req.headers);
    // Newer kubectl tries WebSocket first and falls back to SPDY on a refused upgrade.
    if (kind === 'websocket') return refuse(socket, 403, websocketRefusal(req.headers));
    if (kind !== 'spdy') return refuse(socket, 400, 'unable to upgrade: missing upgrade headers in request (Upgrade: SPDY/3.1)');
    const podName = `${route.namespace}/${route.pod}`;
    const podIP = pods.podIP(route.namespace, route.pod);
    if (!podIP) return refuse(socket, 404, `pod ${podName} is not running on this node`);
    const log = logger.child({ pod: route.pod, namespace: route.namespace, user: auth.user });
    if (route.kind === 'portForward') {
      const proto = negotiateProtocol(req.headers, PORT_FORWARD_PROTOCOLS);
      if (!proto.ok) return refuse(socket, proto.status, proto.message, { 'X-Accepted-Stream-Protocol-Versions': PORT_FORWARD_PROTOCOLS.join(', ') });
      log.info('port-forward session');
      return servePortForward({ socket, head, protocol: proto.protocol, pod: podName, podIP, streamTimeoutMs: STREAM_TIMEOUT_MS, logger: log });
    }
    const parsed = parseExecQuery(url.searchParams);
    if (!parsed.ok) return refuse(socket, 400, parsed.message);
    const target = pods.execTarget(route.namespace, route.pod, route.container);
    if (!target) return refuse(socket, 404, `container ${route.container} of pod ${podName} is not running`);
    const proto = negotiateProtocol(req.headers, EXEC_PROTOCOLS);
    if (!proto.ok) return refuse(socket, proto.status, proto.message, { 'X-Accepted-Stream-Protocol-Versions': EXEC_PROTOCOLS.join(', ') });
    serveExec({ socket, head, protocol: proto.protocol, options: parsed.options, target, streamTimeoutMs: STREAM_TIMEOUT_MS, logger: log.child({ container: route.container }) });
  };

  // Client certificates are asked for and checked by authorizeClient (not refused in the TLS
  // handshake) so that a caller learns why it was turned away.
  const server = https.createServer({ cert: pems.cert, key: pems.private, ca: opts.auth.clientCa, requestCert: true, rejectUnauthorized: false }, onRequest);
  server.on('upgrade', onUpgrade);
  server.on('connection', (s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: async () => {
      closing.abort();
      for (const s of sockets) s.destroy(); // log followers and streaming sessions would hold the server open
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
