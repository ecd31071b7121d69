// Puts the webhook together: certificates (files, and the Secret in a cluster), the sidecar mode,
// the HTTPS server, certificate reloads and the caBundle. What main.ts runs and a demo can call.
import { createLogger, type Logger } from '../common/log.js';
import { ShoalError, errorMessage } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import type { WebhookConfig } from './cli.js';
import { clusterClient, kubeClusterAccess, type ClusterAccess } from './cluster.js';
import type { KubeClient } from '../common/kube/client.js';
import { apiStatus } from '../common/kube/errors.js';
import { namespaced, reviewToken } from '../common/kube/resources.js';
import { MESH_CA_AUDIENCE } from '../common/names.js';
import type { InjectOptions } from './inject.js';
import type { MeshCaDeps } from './mesh-ca-route.js';
import { certSecretName, ensureClusterBundle, syncCaBundle } from './cert-sync.js';
import { watchCertDir } from './cert-watch.js';
import { resolveSidecarMode, type ResolvedMode } from './sidecar-mode.js';
import { startWebhookServer, type WebhookServer } from './server.js';
import { bundleProblems, generateBundle, readCertDir, sameBundle, servingNames, writeCertDir, type TlsBundle } from './tls.js';

export interface StartedWebhook {
  /** https://127.0.0.1:<port> for a wildcard bind, else https://<host>:<port>. */
  url: string;
  port: number;
  /** PEM of the CA that signed the serving certificate (the caBundle to register), if known. */
  caCert: string | undefined;
  sidecar: ResolvedMode;
  server: WebhookServer;
  close(): Promise<void>;
}

export interface StartDeps {
  /** The cluster to use; default: in-cluster or --kubeconfig, else none. null = no cluster. */
  access?: ClusterAccess | null;
  /**
   * The API server the mesh CA asks (TokenReview, pods); default: the same in-cluster or --kubeconfig
   * client. null = no mesh CA (POST /mesh/certificate answers 404 and pods get no mesh-CA settings).
   */
  meshCaClient?: KubeClient | null;
  logger?: Logger;
  /** How often a clustered webhook re-reads its Secret and re-checks the caBundle. */
  syncIntervalMs?: number;
  /** How often the certificate directory is polled besides being watched. */
  certPollMs?: number;
}

async function localBundle(dir: string, names: string[], log: Logger): Promise<TlsBundle> {
  const found = await readCertDir(dir);
  if (found) {
    const problems = bundleProblems(found, names);
    if (problems.length > 0) log.warn({ dir, problems }, 'the certificate in --cert-dir may not fit; delete the files to have new ones generated');
    return found;
  }
  const generated = await generateBundle(names);
  // ca.key is kept (0600): the CA also signs the agents' mesh certificates (mesh-ca.ts).
  await writeCertDir(dir, generated);
  log.info({ dir, names }, 'generated a CA and a serving certificate');
  return generated;
}

export async function startWebhook(config: WebhookConfig, deps: StartDeps = {}): Promise<StartedWebhook> {
  const log = deps.logger ?? createLogger({ component: 'webhook' });
  let access: ClusterAccess | null;
  let meshClient: KubeClient | null;
  try {
    const client = deps.access !== undefined && deps.meshCaClient !== undefined ? null : clusterClient(config.kubeconfig);
    access = deps.access !== undefined ? deps.access : client ? kubeClusterAccess(client) : null;
    meshClient = deps.meshCaClient !== undefined ? deps.meshCaClient : client;
  } catch (err) {
    throw new ShoalError(`cannot load the kubeconfig ${config.kubeconfig ?? '(in-cluster)'}: ${errorMessage(err)}`, 'pass a readable --kubeconfig', { cause: err });
  }

  const sidecar = await resolveSidecarMode(config.sidecarMode, access);
  log.info({ mode: sidecar.mode, reason: sidecar.reason }, 'sidecar mode');

  const names = servingNames(config.service, config.namespace);
  const secret = { namespace: config.namespace, secretName: certSecretName(config.service), names, log };
  let bundle: TlsBundle;
  if (access) {
    const files = await readCertDir(config.certDir);
    bundle = await ensureClusterBundle(access, { ...secret, local: files });
    if (!sameBundle(files, bundle)) await writeCertDir(config.certDir, bundle);
  } else {
    bundle = await localBundle(config.certDir, names, log);
    if (config.webhookConfig) log.warn({ webhookConfig: config.webhookConfig }, 'no cluster to talk to: --webhook-config is ignored');
  }

  let current = bundle;
  const inject: InjectOptions = { agentImage: config.agentImage, agentPort: config.agentPort, sidecarMode: sidecar.mode, version: VERSION };
  let server: WebhookServer;
  try {
    server = await startWebhookServer({
      host: config.host,
      port: config.port,
      cert: bundle.cert,
      key: bundle.key,
      inject,
      logger: log,
      ...(meshClient ? { meshCa: meshCaDeps(meshClient, () => current, log) } : {}),
    });
  } catch (err) {
    throw new ShoalError(`cannot serve HTTPS on ${config.host}:${config.port}: ${errorMessage(err)}`, 'free the port, pass another --port, or fix the files in --cert-dir', { cause: err });
  }
  let caCert = bundle.caCert;
  // What injected agents need to ask for and check mesh certificates: only with a CA key to sign with.
  const meshCaUrl = config.meshCaUrl ?? (config.port === 0 ? server.url : `https://${config.service}.${config.namespace}.svc:443`);
  const setMeshCa = (b: TlsBundle): void => {
    if (meshClient && b.caCert && b.caKey) inject.meshCa = { url: meshCaUrl, caCert: b.caCert };
    else delete inject.meshCa;
  };
  setMeshCa(bundle);
  if (meshClient && !inject.meshCa) log.warn({ dir: config.certDir }, 'no CA key (ca.key) to sign mesh certificates with: agents will not get one; delete the files to have new ones generated');
  const watcher = watchCertDir(config.certDir, bundle, (b) => {
    server.setCertificate(b.cert, b.key);
    caCert = b.caCert ?? caCert;
    current = b;
    setMeshCa(b);
  }, log, deps.certPollMs);

  // In a cluster: follow the Secret (another replica may renew it) and keep the caBundle current.
  let timer: NodeJS.Timeout | undefined;
  let syncing: Promise<void> = Promise.resolve();
  const sync = async () => {
    if (!access) return;
    try {
      const current = await ensureClusterBundle(access, { ...secret, local: null });
      if (!sameBundle(await readCertDir(config.certDir), current)) {
        await writeCertDir(config.certDir, current);
        await watcher.check();
      }
      if (config.webhookConfig && current.caCert) {
        const result = await syncCaBundle(access, config.webhookConfig, current.caCert);
        if (result === 'patched') log.info({ webhookConfig: config.webhookConfig }, 'updated caBundle');
        if (result === 'missing') log.warn({ webhookConfig: config.webhookConfig }, 'MutatingWebhookConfiguration not found (yet); will retry');
      }
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'certificate sync failed; serving the current certificate and retrying');
    }
  };
  if (access) {
    syncing = sync();
    await syncing;
    timer = setInterval(() => {
      syncing = syncing.then(sync);
    }, deps.syncIntervalMs ?? 60_000);
    timer.unref();
  }
  log.info({ url: server.url, version: VERSION, agentImage: config.agentImage, cluster: access !== null, meshCa: inject.meshCa?.url ?? null }, 'shoal-webhook serving');

  return {
    url: server.url,
    port: server.port,
    get caCert() {
      return caCert;
    },
    sidecar,
    server,
    async close() {
      clearInterval(timer);
      watcher.close();
      await syncing;
      await server.close();
    },
  };
}

/** The mesh CA's effects: TokenReview with the mesh-CA audience, the caller's pod, the current CA. */
function meshCaDeps(client: KubeClient, bundle: () => TlsBundle, log: Logger): MeshCaDeps {
  return {
    review: (token, signal) => reviewToken(client, token, { signal }, [MESH_CA_AUDIENCE]),
    async getPod(namespace, name, signal) {
      try {
        return await namespaced(client, namespace).pods.get(name, { signal });
      } catch (err) {
        if (apiStatus(err) === 404) return null;
        throw err;
      }
    },
    ca() {
      const b = bundle();
      return b.caCert && b.caKey ? { cert: b.caCert, key: b.caKey } : null;
    },
    logger: log.child({ module: 'mesh-ca' }),
  };
}
