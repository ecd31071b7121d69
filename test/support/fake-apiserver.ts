// A scripted stand-in for the API server over plain HTTP: each test answers requests itself, and
// the server and its clients go away after each test.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import { KubeClient } from '../../common/kube/client.js';

export type FakeHandler = (req: IncomingMessage, res: ServerResponse, url: URL, body: string) => void;

/** Registers the cleanup; returns `start`, which serves `handler` and gives a client for it. */
export function fakeApiServer(): { start: (handler: FakeHandler, token?: string) => Promise<KubeClient> } {
  let server: Server | undefined;
  const clients: KubeClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server?.close(() => r()));
      server = undefined;
    }
  });
  const start = async (handler: FakeHandler, token?: string): Promise<KubeClient> => {
    const s = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => handler(req, res, new URL(req.url ?? '/', 'http://x'), body));
    });
    server = s;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const { port } = s.address() as AddressInfo;
    const client = new KubeClient({ server: `http://127.0.0.1:${port}`, ...(token ? { token: () => Promise.resolve(token) } : {}) });
    clients.push(client);
    return client;
  };
  return { start };
}

/** Answers `body` as JSON, with `code` (default: the status the handler already set, else 200). */
export function answerJson(res: ServerResponse, body: unknown, code = res.statusCode): void {
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}
