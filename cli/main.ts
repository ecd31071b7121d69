import { Command } from 'commander';
import { CLUSTER_LABEL, DEFAULT_AGENT_PORT } from '../common/names.js';
import { errorMessage } from '../common/errors.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { namespaced } from '../common/kube/resources.js';
import { VERSION } from '../common/version.js';
import { asAgentStatus, renderStatusTable } from './status-table.js';

// `shoal status`: a patronictl-list style view of a cluster, read from any agent's /status —
// either a URL (e.g. through `kubectl port-forward`) or through the API server's pod proxy.

async function fetchFromUrl(url: string, timeoutMs = 5000): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return res.json();
}

async function fetchThroughApiServer(opts: { kubeconfig?: string; cluster: string; namespace: string }): Promise<unknown> {
  const client = new KubeClient(loadKubeConfig(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}));
  try {
    return await firstStatus(client, opts);
  } finally {
    client.close(); // idle keep-alive sockets must not hold the command open
  }
}

async function firstStatus(client: KubeClient, opts: { cluster: string; namespace: string }): Promise<unknown> {
  const pods = await namespaced(client, opts.namespace).pods.list({ labelSelector: `${CLUSTER_LABEL}=${opts.cluster}` });
  const running = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  if (running.length === 0) {
    throw new Error(`no running pod with label ${CLUSTER_LABEL}=${opts.cluster} in namespace ${opts.namespace}`);
  }
  let lastError: unknown;
  // Any agent answers for the whole cluster; try them in turn until one does: first straight to the
  // pod IP (works inside the cluster network, and on Shoal's local cluster, whose loopback pod IPs
  // the API server refuses to proxy to), then through the API server's pod proxy.
  for (const pod of running) {
    if (pod.status?.podIP) {
      try {
        return await fetchFromUrl(`http://${pod.status.podIP}:${DEFAULT_AGENT_PORT}/status`, 1000);
      } catch (err) {
        lastError = err;
      }
    }
    try {
      const name = `${encodeURIComponent(pod.metadata?.name ?? '')}:${DEFAULT_AGENT_PORT}`;
      return await client.request<unknown>(`read /status of pod ${pod.metadata?.name ?? ''}`, {
        method: 'GET',
        path: `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods/${name}/proxy/status`,
      });
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`no agent answered /status: ${errorMessage(lastError)}`);
}

const program = new Command('shoal').version(VERSION).description('Inspect Shoal-managed Tarantool clusters');
program
  .command('status')
  .description('print every replica set of a cluster with its members and roles')
  .option('--url <url>', "an agent's /status URL (e.g. http://127.0.0.1:8080/status after kubectl port-forward)")
  .option('--kubeconfig <path>', 'kubeconfig to reach the API server (default: $KUBECONFIG or ~/.kube/config)')
  .option('--cluster <name>', 'the shoal.dev/cluster value')
  .option('-n, --namespace <ns>', 'namespace of the cluster', 'default')
  .option('--json', 'print the raw /status JSON')
  .action(async (opts: { url?: string; kubeconfig?: string; cluster?: string; namespace: string; json?: boolean }) => {
    if (!opts.url && !opts.cluster) throw new Error('give --url, or --cluster (with --kubeconfig or $KUBECONFIG)');
    const raw = opts.url
      ? await fetchFromUrl(opts.url)
      : await fetchThroughApiServer({ kubeconfig: opts.kubeconfig, cluster: opts.cluster ?? '', namespace: opts.namespace });
    const status = asAgentStatus(raw);
    process.stdout.write(`${opts.json ? JSON.stringify(status, null, 2) : renderStatusTable(status)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`shoal: ${errorMessage(err)}\n`);
  process.exit(1);
});
