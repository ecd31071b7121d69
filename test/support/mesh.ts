// Real meshes on 127.0.0.1 for the mesh integration tests: each node has its own mTLS server (a
// certificate for its pod from a test mesh CA, signed by the webhook's own code), metrics registry
// and captured log lines. Everything a node opens, stop() closes.
import { generateKeyPairSync } from 'node:crypto';
import { request } from 'node:https';
import { pino, type Logger } from 'pino';
import { Registry, type Counter } from 'prom-client';
import { Mesh, type MeshOptions } from '../../agent/mesh/mesh.js';
import type { MeshCredentials } from '../../agent/mesh/server.js';
import { sleep } from '../../common/time.js';
import type { MeshIdentity } from '../../common/mesh-identity.js';
import type { InstanceState } from '../../agent/wire/mesh-protocol.js';
import { issueMeshCertificate } from '../../webhook/mesh-ca.js';
import { generateBundle } from '../../webhook/tls.js';

export const CLUSTER = 'demo';
export const NAMESPACE = 'default';

export interface TestCa {
  cert: string;
  key: string;
}

/** A fresh mesh CA (the webhook's CA generator). */
export async function newCa(): Promise<TestCa> {
  const b = await generateBundle(['localhost']);
  return { cert: b.caCert, key: b.caKey };
}

let sharedCa: Promise<TestCa> | undefined;
/** The CA every node of these tests trusts. */
export const testCa = (): Promise<TestCa> => (sharedCa ??= newCa());

/** A key of its own and a certificate from `ca` naming `id` (default: `pod` of this namespace and cluster). */
export async function credentialsFor(pod: string, o: { ca?: TestCa; trust?: TestCa; id?: Partial<MeshIdentity> } = {}): Promise<MeshCredentials> {
  const ca = o.ca ?? (await testCa());
  const trust = o.trust ?? (await testCa());
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = await issueMeshCertificate(ca, publicKey, { namespace: NAMESPACE, cluster: CLUSTER, pod, ...o.id });
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert, ca: trust.cert };
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface Node {
  pod: string;
  port: number;
  mesh: Mesh;
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
  const mesh = new Mesh({
    self: pod,
    namespace: NAMESPACE,
    cluster: CLUSTER,
    credentials: await credentialsFor(pod),
    logger: captureLogger(logs),
    registry,
    heartbeatIntervalMs: 50,
    staleAfterMs: 400,
    pingIntervalMs: 500,
    backoff: { initialMs: 50, maxMs: 400 },
    ...opts,
  });
  const listening = await mesh.listen('127.0.0.1', port);
  let stopped = false;
  return {
    pod,
    port: listening,
    mesh,
    registry,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await mesh.close();
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

/**
 * A raw upgrade request over TLS with `creds` (its certificate is what the server judges); resolves
 * with the HTTP status the server answered (101 = accepted). Rejects when TLS itself refuses.
 */
export function upgradeStatus(port: number, headers: Record<string, string>, creds: MeshCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/mesh',
      key: creds.key,
      cert: creds.cert,
      ca: creds.ca,
      checkServerIdentity: () => undefined,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
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
