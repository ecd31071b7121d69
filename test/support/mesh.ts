// Real meshes on 127.0.0.1 for the mesh integration tests: each node has its own HTTP server, metrics
// registry and captured log lines. Everything a node opens, stop() closes.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { Registry, type Counter } from 'prom-client';
import { Mesh, type MeshOptions } from '../../agent/mesh/mesh.js';
import { sleep } from '../../common/time.js';
import type { InstanceState } from '../../agent/wire/mesh-protocol.js';

export const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvwxyz';
export const CLUSTER = 'demo';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface Node {
  pod: string;
  port: number;
  mesh: Mesh;
  server: Server;
  registry: Registry;
  logs: LogLine[];
  stop(): Promise<void>;
}

export const instanceState = (role: InstanceState['role'] = 'replica'): InstanceState => ({
  role,
  ro: role !== 'master',
  vclock: { '1': 10 },
  lag: 0,
  healthy: true,
  configured: true,
  upstreams: [],
});

export function captureLogger(lines: LogLine[]): Logger {
  return pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
}

/** Starts a mesh node on 127.0.0.1 (port 0 = any free port). */
export async function startNode(pod: string, opts: Partial<MeshOptions> = {}, port = 0): Promise<Node> {
  const logs: LogLine[] = [];
  const registry = new Registry();
  const server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const mesh = new Mesh({
    self: pod,
    cluster: CLUSTER,
    token: TOKEN,
    logger: captureLogger(logs),
    registry,
    heartbeatIntervalMs: 50,
    staleAfterMs: 400,
    pingIntervalMs: 500,
    backoff: { initialMs: 50, maxMs: 400 },
    ...opts,
  });
  mesh.attach(server);
  let stopped = false;
  return {
    pod,
    port: (server.address() as AddressInfo).port,
    mesh,
    server,
    registry,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await mesh.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every node dials every other. */
export function connectAll(nodes: Node[]): void {
  const targets = nodes.map((n) => ({ pod: n.pod, address: `127.0.0.1:${n.port}` }));
  for (const n of nodes) n.mesh.setPeers(targets);
}

export async function until(cond: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export async function counterValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name) as Counter | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

/** A raw upgrade request; resolves with the HTTP status the server answered (101 = accepted). */
export function upgradeStatus(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mesh', headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
