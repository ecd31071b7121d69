import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { generate } from 'selfsigned';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';

// The kubelet's HTTPS endpoint, as far as `kubectl logs` needs it: the API server proxies
// GET /containerLogs/<ns>/<pod>/<container> to the node's InternalIP and kubeletEndpoint port.
// The certificate is self-signed (the local API server runs without --kubelet-certificate-authority
// and does not check it). Logs are the container's file (every run appended).

export interface LogServer {
  port: number;
  close(): Promise<void>;
}

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

export async function startLogServer(opts: {
  logPathOf: (namespace: string, pod: string, container: string) => string | undefined;
  logger: Logger;
}): Promise<LogServer> {
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

  const server = https.createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    if (url.pathname === '/healthz') return void res.end('ok');
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) {
      res.statusCode = 404;
      return void res.end('the process kubelet serves only /containerLogs and /healthz\n');
    }
    const [, ns, pod, container] = m.map((s) => decodeURIComponent(s)) as [string, string, string, string];
    const file = opts.logPathOf(ns, pod, container);
    if (!file) {
      res.statusCode = 404;
      return void res.end(`container ${container} of pod ${ns}/${pod} is not on this node\n`);
    }
    const q = parseLogQuery(url.searchParams);
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
        if (!q.follow || budget <= 0 || res.destroyed || closing.signal.aborted) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      res.end();
    })().catch((err: unknown) => {
      opts.logger.debug({ err: errorMessage(err) }, 'log request failed');
      res.destroy();
    });
  });
  server.on('connection', (s) => {
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
      for (const s of sockets) s.destroy(); // followers would hold the server open
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
