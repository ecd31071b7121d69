import path from 'node:path';
import type { Logger } from '../common/log.js';
import { errorMessage, ShoalError } from '../common/errors.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { VERSION } from '../common/version.js';
import { DEFAULT_AGENT_PORT } from '../common/names.js';
import { startWebhook, type StartedWebhook } from '../webhook/start.js';
import { agentRbacObjects, applyObjects, installLocalWebhook } from './local-install.js';
import type { LocalCluster, LocalClusterOptions } from '../localcluster/cluster.js';
import { startShoalLocalCluster } from './local-cluster.js';

// Shoal installed on the local cluster the way manifests/ installs it on a real one, except where
// loopback needs otherwise (KUBERNETES.md): the webhook runs as a process of ours, registered by URL
// (a Service's ClusterIP routes nowhere here), in container sidecar mode (1.20 has no native sidecars).

export interface ShoalStack {
  cluster: LocalCluster;
  webhook: StartedWebhook;
  /** The shared layer's client with the cluster's admin kubeconfig (`cluster.kubeconfig`). */
  client: KubeClient;
  /** Installs the agents' ServiceAccount, Role and RoleBinding (manifests/agent-rbac.yaml) in a namespace. */
  prepareNamespace(namespace: string): Promise<void>;
  /** Stops the webhook and the whole local cluster; no process is left. */
  stop(): Promise<void>;
}

export async function startShoalStack(opts: LocalClusterOptions & { logger: Logger }): Promise<ShoalStack> {
  const cluster = await startShoalLocalCluster(opts);
  let webhook: StartedWebhook | undefined;
  // The webhook's mesh CA asks this API server (TokenReview, pods); the admin identity stands in for
  // the webhook's ServiceAccount, whose ClusterRole (manifests/rbac.yaml) grants exactly those calls.
  const client = new KubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig }));
  try {
    webhook = await startWebhook(
      {
        port: 0,
        host: '127.0.0.1',
        certDir: path.join(cluster.runDir, 'webhook-certs'),
        service: 'shoal-webhook',
        namespace: 'shoal-system',
        agentImage: `shoal/agent:${VERSION}`,
        agentPort: DEFAULT_AGENT_PORT,
        sidecarMode: 'container',
      },
      { access: null, meshCaClient: client, logger: opts.logger.child({ component: 'webhook' }) },
    );
    if (!webhook.caCert) throw new ShoalError('the webhook started without a CA certificate');
    await installLocalWebhook(client, { url: webhook.url, caCert: webhook.caCert });
    const started = webhook;
    return {
      cluster,
      webhook: started,
      client,
      prepareNamespace: (namespace) => applyObjects(client, agentRbacObjects(namespace)),
      async stop() {
        const errors: string[] = [];
        client.close();
        await started.close().catch((err: unknown) => errors.push(`webhook: ${errorMessage(err)}`));
        await cluster.stop().catch((err: unknown) => errors.push(errorMessage(err)));
        if (errors.length) throw new ShoalError(`Shoal's local stack did not stop cleanly: ${errors.join('; ')}`);
      },
    };
  } catch (err) {
    client.close();
    await webhook?.close().catch(() => undefined);
    await cluster.stop().catch(() => undefined);
    throw err;
  }
}
