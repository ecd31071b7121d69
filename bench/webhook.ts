// Webhook admission latency (SPEC §7) against its baseline: the same pod AdmissionReview POSTed to
// Shoal's webhook server and to a no-op HTTPS handler, both in this process, with the same
// certificate and TLS options, over one keep-alive connection each (the API server keeps its
// connections too), so the difference is Shoal's work: routing, JSON, the injection, the patch,
// metrics and the log line (written to /dev/null). Requests alternate between the two servers in
// blocks, so a noisy neighbour on a shared machine hits both alike.
import { Agent, createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { startWebhookServer } from '../webhook/server.js';
import { generateBundle, servingNames } from '../webhook/tls.js';
import { VERSION } from '../common/version.js';
import { stats, ratio } from './stats.js';
import type { Benchmark, BenchContext, Figure, FigureSpec } from './types.js';

const FIGURE: FigureSpec = {
  name: 'webhook admission latency',
  unit: 'ms',
  what: 'POST /mutate/pods with a StatefulSet pod, request sent → response read, one keep-alive TLS connection',
};
const LARGE_ENV = 800;
const LARGE: FigureSpec = {
  name: 'webhook admission latency, large pod',
  unit: 'ms',
  what: `the same, the Tarantool container with ${LARGE_ENV} env entries (the JSON Patch diff was quadratic in list lengths: > 30 s before)`,
};
const BLOCK = 100;

export const webhookBenchmark: Benchmark = {
  name: 'webhook',
  figures: [FIGURE, LARGE],
  budgetMs: { quick: 120_000, full: 300_000 },
  async run(ctx) {
    return [await measureAdmission(ctx, FIGURE, ctx.quick ? 500 : 3000, 0), await measureAdmission(ctx, LARGE, ctx.quick ? 100 : 500, LARGE_ENV)];
  },
};

async function measureAdmission(ctx: BenchContext, figure: FigureSpec, n: number, extraEnv: number): Promise<Figure> {
  const tls = await generateBundle(servingNames('shoal-webhook', 'shoal-system'));
  // The webhook logs every admission at info: keep that cost in, send the lines nowhere.
  const sink = pino.destination({ dest: '/dev/null', sync: true });
  const logger = pino({ level: 'info', base: { component: 'webhook' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: tls.caCert });
  const noopAgent = new Agent({ keepAlive: true, maxSockets: 1, ca: tls.caCert });
  const webhook = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    cert: tls.cert,
    key: tls.key,
    inject: { agentImage: 'shoal/agent:bench', agentPort: 8080, sidecarMode: 'container', version: VERSION },
    logger,
  });
  let noop: Server | undefined;
  try {
    noop = await startNoop(tls.cert, tls.key);
    const noopUrl = new URL('/mutate/pods', `https://127.0.0.1:${(noop.address() as AddressInfo).port}`);
    const webhookUrl = new URL('/mutate/pods', webhook.url);

    const first = await post(webhookUrl, review(0, extraEnv), agent);
    checkPatched(first.body);
    ctx.log(`webhook (${figure.name}): warming up, then ${n} requests to each server in blocks of ${BLOCK}`);
    for (let i = 1; i <= 200; i++) {
      await post(webhookUrl, review(i, extraEnv), agent);
      await post(noopUrl, review(i, extraEnv), noopAgent);
    }
    const shoal: number[] = [];
    const base: number[] = [];
    for (let block = 0; shoal.length < n; block++) {
      ctx.signal.throwIfAborted();
      const size = Math.min(BLOCK, n - shoal.length);
      // Alternate which server goes first in a block.
      const order = block % 2 === 0 ? (['shoal', 'noop'] as const) : (['noop', 'shoal'] as const);
      for (const which of order) {
        for (let i = 0; i < size; i++) {
          const r = await post(which === 'shoal' ? webhookUrl : noopUrl, review(block * BLOCK + i, extraEnv), which === 'shoal' ? agent : noopAgent);
          if (r.status !== 200) throw new Error(`${which} answered HTTP ${r.status}: ${r.body.slice(0, 200)}`);
          (which === 'shoal' ? shoal : base).push(r.ms);
        }
      }
    }
    const s = stats(shoal, true);
    const b = stats(base, true);
    return {
      ...figure,
      status: 'measured',
      ...s,
      baseline: { name: 'no-op HTTPS handler', ...b },
      ratio: { median: ratio(s.median, b.median), p99: ratio(s.p99 ?? NaN, b.p99 ?? NaN) },
      note: 'both servers in-process on 127.0.0.1 with the same certificate and TLS options; the no-op handler reads the body and returns a fixed AdmissionReview',
    };
  } finally {
    agent.destroy();
    noopAgent.destroy();
    await webhook.close(1000);
    if (noop) await closeServer(noop);
    sink.end();
  }
}

/** The baseline: same TLS as the webhook server (webhook/server.ts), reads the body, fixed answer. */
async function startNoop(cert: string, key: string): Promise<Server> {
  const answer = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '', allowed: true } });
  const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

interface Reply {
  status: number;
  body: string;
  ms: number;
}

/** One POST; the time runs from the call to the end of the response body. Bounded at 10 s. */
function post(url: URL, body: string, agent: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { method: 'POST', agent, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.href} within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

function checkPatched(body: string): void {
  const r = JSON.parse(body) as { response?: { allowed?: boolean; patch?: string } };
  if (r.response?.allowed !== true || !r.response.patch) throw new Error(`the webhook did not patch the benchmark pod: ${body.slice(0, 300)}`);
}

/** An AdmissionReview for a pod as the StatefulSet controller creates it (what a real admission carries). */
function review(i: number, extraEnv: number): string {
  const env = [{ name: 'TARANTOOL_MEMTX_MEMORY', value: '268435456' }, ...Array.from({ length: extraEnv }, (_, k) => ({ name: `APP_SETTING_${k}`, value: String(k) }))];
  const name = `storage-${i % 3}`;
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      name,
      userInfo: { username: 'system:serviceaccount:kube-system:statefulset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace: 'default',
          generateName: 'storage-',
          labels: { app: 'storage', 'shoal.dev/cluster': 'demo', 'controller-revision-hash': 'storage-5d8f7c9b6', 'statefulset.kubernetes.io/pod-name': name },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'storage', uid: '6f1c2a0e-3b7d-4c59-9a41-2d8e5f6a7b80', controller: true, blockOwnerDeletion: true }],
        },
        spec: {
          hostname: name,
          subdomain: 'storage',
          containers: [
            {
              name: 'tarantool',
              image: 'tarantool/tarantool:2.6',
              command: ['tarantool', '/opt/app/init.lua'],
              ports: [{ name: 'iproto', containerPort: 3301, protocol: 'TCP' }],
              env,
              volumeMounts: [
                { name: 'data', mountPath: '/var/lib/tarantool' },
                { name: 'app', mountPath: '/opt/app' },
              ],
              resources: { requests: { cpu: '100m', memory: '256Mi' } },
            },
          ],
          volumes: [
            { name: 'data', persistentVolumeClaim: { claimName: `data-${name}` } },
            { name: 'app', configMap: { name: 'storage-app' } },
          ],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
        },
      },
    },
  });
}
