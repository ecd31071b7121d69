// Puts the webhook together: certificates (files, and the Secret in a cluster), the sidecar mode,
// the HTTPS server, certificate reloads and the caBundle. What main.ts runs and a demo can call.
import { createLogger, type Logger } from '../common/log.js';
import { ShoalError, errorMessage } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import type { WebhookConfig } from './cli.js';
import { clusterClient, kubeClusterAccess, type ClusterAccess } from './cluster.js';
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
  // ca.key stays in memory: the CA exists only to sign this one certificate.
  const { caKey: _caKey, ...files } = generated;
  await writeCertDir(dir, files);
  log.info({ dir, names }, 'generated a CA and a serving certificate');
  return files;
}

export async function startWebhook(config: WebhookConfig, deps: StartDeps = {}): Promise<StartedWebhook> {
  const log = deps.logger ?? createLogger({ component: 'webhook' });
  let access: ClusterAccess | null;
  try {
    access = deps.access !== undefined ? deps.access : (() => {
      const client = clusterClient(config.kubeconfig);
      return client ? kubeClusterAccess(client) : null;
    })();
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

  let server: WebhookServer;
  try {
    server = await startWebhookServer({
      host: config.host,
      port: config.port,
      cert: bundle.cert,
      key: bundle.key,
      inject: { agentImage: config.agentImage, agentPort: config.agentPort, sidecarMode: sidecar.mode, version: VERSION },
      logger: log,
    });
  } catch (err) {
    throw new ShoalError(`cannot serve HTTPS on ${config.host}:${config.port}: ${errorMessage(err)}`, 'free the port, pass another --port, or fix the files in --cert-dir', { cause: err });
  }
  let caCert = bundle.caCert;
  const watcher = watchCertDir(config.certDir, bundle, (b) => {
    server.setCertificate(b.cert, b.key);
    caCert = b.caCert ?? caCert;
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
  log.info({ url: server.url, version: VERSION, agentImage: config.agentImage, cluster: access !== null }, 'shoal-webhook serving');

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
